package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/compat"
	"github.com/trainenv/trainenv/internal/cuda"
	"github.com/trainenv/trainenv/internal/reconcileerror"
)

// checkCompatibility looks for a node that can run the environment: enough GPUs, of the
// requested product, with a driver that satisfies the image's CUDA requirement. None is a
// stalled pass: the node watch starts a new one when nodes change.
func (r *TrainingEnvironmentReconciler) checkCompatibility(ctx context.Context, p *pass) error {
	te := p.te
	if te.Spec.GPU == nil || te.Spec.GPU.Count == 0 {
		res := compat.Check(te.Spec.GPU, cuda.Requirements{}, nil)
		countCompatibility(res.Reason)
		setCompatible(te, metav1.ConditionTrue, res.Reason, res.Message)
		return nil
	}
	rs, err := cudaRequirements(te)
	if err != nil {
		return r.incompatible(te, trainenvv1.ReasonInvalidCUDARequirement, fmt.Sprintf("%v; fix the requirement or set spec.cuda.require", err))
	}
	if te.Spec.GPU.DeviceClassName != "" {
		return r.checkDevices(ctx, p, rs)
	}
	// The checks only read the nodes: use the cached objects themselves. A deep copy of
	// every node on every pass was most of the manager's CPU time with 1,000 nodes, and a
	// new list per pass most of its garbage (nodesnapshot.go).
	nodes, err := r.nodes.list(ctx, r.Client)
	if err != nil {
		return err
	}
	res := compat.Check(te.Spec.GPU, rs, nodes)
	if !res.OK {
		return r.incompatible(te, res.Reason, res.Message)
	}
	if p.affinity, err = compat.Affinity(rs, te.Spec.GPU.Products); err != nil {
		return r.incompatible(te, trainenvv1.ReasonInvalidCUDARequirement, err.Error())
	}
	compatible(p, rs, res)
	return nil
}

// checkDevices is checkCompatibility for gpu.deviceClassName: the devices the cluster's
// ResourceSlices publish, and the selectors the pod's claim will carry.
func (r *TrainingEnvironmentReconciler) checkDevices(ctx context.Context, p *pass, rs cuda.Requirements) error {
	te := p.te
	rslices, err := r.slices.list(ctx, r.Client)
	if meta.IsNoMatchError(err) {
		return r.incompatible(te, trainenvv1.ReasonNoGPUDevices,
			"gpu.deviceClassName needs Dynamic Resource Allocation (resource.k8s.io/v1, Kubernetes 1.34 or later), which this cluster does not serve; use gpu.resourceName")
	}
	if err != nil {
		return err
	}
	res := compat.CheckDevices(te.Spec.GPU, rs, rslices)
	if !res.OK {
		return r.incompatible(te, res.Reason, res.Message)
	}
	if p.deviceSelectors, err = compat.DeviceSelectors(rs, te.Spec.GPU.Products); err != nil {
		return r.incompatible(te, trainenvv1.ReasonInvalidCUDARequirement, err.Error())
	}
	compatible(p, rs, res)
	return nil
}

// compatible records a passed check, by node labels or by devices: the requirements the
// pod will carry, the metric, and the condition.
func compatible(p *pass, rs cuda.Requirements, res compat.Result) {
	for _, req := range rs.All {
		p.cudaRequirements = append(p.cudaRequirements, req.String())
	}
	countCompatibility(res.Reason)
	setCompatible(p.te, metav1.ConditionTrue, res.Reason, res.Message)
}

// cudaRequirements are spec.cuda.require when given, else what the pinned image declares,
// relaxed when the environment opted into CUDA minor-version compatibility.
func cudaRequirements(te *trainenvv1.TrainingEnvironment) (cuda.Requirements, error) {
	spec := te.Spec.CUDA
	var rs cuda.Requirements
	var err error
	if spec != nil && spec.Require != "" {
		rs, err = cuda.FromValues([]string{spec.Require}, "spec.cuda.require")
	} else {
		rs, err = cuda.FromValues(te.Status.Image.CUDARequirements, "the image's NVIDIA_REQUIRE_CUDA")
	}
	if err != nil || spec == nil || !spec.MinorVersionCompatibility {
		return rs, err
	}
	return cuda.WithMinorVersionCompatibility(rs), nil
}

func (r *TrainingEnvironmentReconciler) incompatible(te *trainenvv1.TrainingEnvironment, reason, message string) error {
	countCompatibility(reason)
	if setCompatible(te, metav1.ConditionFalse, reason, message) {
		r.event(te, corev1.EventTypeWarning, reason, "Schedule", "%s", message)
	}
	return reconcileerror.NewStalled(reason, "%s", message)
}

// setCompatible is the only writer of the Compatible condition.
func setCompatible(te *trainenvv1.TrainingEnvironment, status metav1.ConditionStatus, reason, message string) bool {
	return setCondition(te, trainenvv1.ConditionCompatible, status, reason, message)
}

func markCompatibilityWaiting(te *trainenvv1.TrainingEnvironment) {
	// A step that did not run this pass leaves what an earlier pass observed in place.
	if meta.FindStatusCondition(te.Status.Conditions, trainenvv1.ConditionCompatible) == nil {
		setCompatible(te, metav1.ConditionUnknown, trainenvv1.ReasonWaitingForImage,
			"waiting for the image to be resolved and verified")
	}
}
