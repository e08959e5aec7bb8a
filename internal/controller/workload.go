package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	resourceapi "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/reconcileerror"
	"github.com/trainenv/trainenv/internal/workload"
)

// ensureWorkload is the workload step. Its sub-steps run in order and stop at the first
// that cannot finish; the last reports WorkloadReady from the pod.
func (r *TrainingEnvironmentReconciler) ensureWorkload(ctx context.Context, p *pass) error {
	for _, sub := range []func(context.Context, *pass) error{
		r.ensureWorkspace,       // the workspace claim
		r.updateIdleSuspension,  // idle exits and resumes, before the workload is rendered
		r.prepareAccess,         // Jupyter token, SSH host keys, authorized_keys
		r.ensureWorkloadObjects, // the StatefulSet running the pinned digest, its NetworkPolicy
		r.observePod,            // WorkloadReady from the pod
		r.observeAccess,         // status.lastAccess and status.activity from the pod's log
	} {
		if err := sub(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// prepareAccess runs ensureAccess and reports a missing or invalid user Secret in
// WorkloadReady. A suspended environment runs no pod: nothing to wait for.
func (r *TrainingEnvironmentReconciler) prepareAccess(ctx context.Context, p *pass) error {
	te := p.te
	err := r.ensureAccess(ctx, p)
	if err == nil || te.Spec.Suspend || idleSuspended(te) {
		return nil
	}
	if reason, msg, ok := reconcileerror.ReasonOf(err); ok {
		if setWorkloadReady(te, metav1.ConditionFalse, reason, msg) {
			r.event(te, corev1.EventTypeWarning, reason, "CheckAccess", "%s", msg)
		}
	}
	return err
}

// ensureWorkloadObjects renders the StatefulSet for the pinned digest and its
// NetworkPolicy, and creates or updates them.
func (r *TrainingEnvironmentReconciler) ensureWorkloadObjects(ctx context.Context, p *pass) error {
	te := p.te
	in := workload.Inputs{
		PinnedImage: p.pinned, Affinity: p.affinity, ToolsImage: r.ToolsImage, CUDARequirements: p.cudaRequirements,
		IdleSuspended: idleSuspended(te),
	}
	var owned []ownedObject
	if workload.UsesDRA(te) {
		// The GPU claim's template (gpu.deviceClassName). Its spec is immutable and its name
		// carries its hash: never updated, a new one when the selectors change.
		tmpl := workload.ResourceClaimTemplate(te, p.deviceSelectors)
		in.ClaimTemplate = tmpl.Name
		owned = append(owned, ownedObject{tmpl, func(client.Object, client.Object) {}})
	}
	sts := workload.StatefulSet(te, in)
	return r.ensureAllOwned(ctx, p, append(owned, []ownedObject{
		{sts, func(live, desired client.Object) {
			l, d := live.(*appsv1.StatefulSet), desired.(*appsv1.StatefulSet)
			l.Spec.Replicas, l.Spec.Template = d.Spec.Replicas, d.Spec.Template
		}},
		{workload.NetworkPolicy(te), func(live, desired client.Object) {
			live.(*networkingv1.NetworkPolicy).Spec = desired.(*networkingv1.NetworkPolicy).Spec
		}},
	}...))
}

// ownedObject is an object ensureOwned keeps in line, with how to update the live copy.
type ownedObject struct {
	desired client.Object
	update  func(live, desired client.Object)
}

// ensureAllOwned ensures the objects concurrently: they do not depend on one another, and
// each write waits on the API server, so the first pass waits for one write instead of
// several in a row. The
// NetworkPolicy is defense in depth (the servers listen on loopback; users come through
// port-forward), and a pod needs scheduling and a kubelet before anything listens. Creates
// are announced in one event, not one per object, with the pin of the same pass: events
// are API writes too (docs/benchmarks.md).
func (r *TrainingEnvironmentReconciler) ensureAllOwned(ctx context.Context, p *pass, objs []ownedObject) error {
	te := p.te
	created := make([]string, len(objs))
	var g errgroup.Group
	for i, o := range objs {
		g.Go(func() error {
			made, err := r.ensureOwned(ctx, te, o.desired, o.update)
			if made {
				created[i] = kindOf(o.desired) + " " + o.desired.GetName()
			}
			return err
		})
	}
	err := g.Wait()
	if created = slices.DeleteFunc(created, func(s string) bool { return s == "" }); len(created) > 0 {
		note := "created " + strings.Join(created, ", ")
		if p.pinNote != "" {
			note = p.pinNote + "; " + note
			p.pinNote = ""
		}
		r.event(te, corev1.EventTypeNormal, trainenvv1.ReasonCreatedWorkload, "Create", "%s", note)
	}
	return err
}

// ensureOwned creates desired, owned by te, or updates the live object with update when the
// hash of the rendered spec changed, and reports whether it created it. An unchanged spec
// costs no write.
func (r *TrainingEnvironmentReconciler) ensureOwned(ctx context.Context, te *trainenvv1.TrainingEnvironment, desired client.Object, update func(live, desired client.Object)) (bool, error) {
	hash := workload.SpecHash(specOf(desired))
	desired.SetAnnotations(map[string]string{workload.AnnotationSpecHash: hash})
	if err := controllerutil.SetControllerReference(te, desired, r.Scheme()); err != nil {
		return false, err
	}
	live := desired.DeepCopyObject().(client.Object)
	err := r.Get(ctx, client.ObjectKeyFromObject(desired), live)
	switch {
	case apierrors.IsNotFound(err):
		if err := r.Create(ctx, desired, FieldOwner); err != nil {
			return false, err
		}
		return true, nil
	case err != nil:
		return false, err
	case !metav1.IsControlledBy(live, te):
		return false, fmt.Errorf("%s %s exists and is not owned by this TrainingEnvironment; rename one of them", kindOf(desired), desired.GetName())
	case live.GetAnnotations()[workload.AnnotationSpecHash] == hash:
		return false, nil
	}
	update(live, desired)
	annotations := live.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[workload.AnnotationSpecHash] = hash
	live.SetAnnotations(annotations)
	return false, r.Update(ctx, live, FieldOwner)
}

// ensureWorkspace creates the workspace claim, grows it when spec.workspace.size grows, and
// keeps its owner reference in line with keepOnDelete. A kept claim of an earlier
// environment with the same name is adopted: recreating an environment gets its work back.
func (r *TrainingEnvironmentReconciler) ensureWorkspace(ctx context.Context, p *pass) error {
	te := p.te
	desired := workload.WorkspaceClaim(te)
	if desired == nil {
		return nil
	}
	live := &corev1.PersistentVolumeClaim{}
	err := r.Get(ctx, client.ObjectKeyFromObject(desired), live)
	if apierrors.IsNotFound(err) {
		if !workload.KeepWorkspace(te) {
			if err := controllerutil.SetControllerReference(te, desired, r.Scheme()); err != nil {
				return err
			}
		}
		if err := r.Create(ctx, desired, FieldOwner); err != nil {
			return err
		}
		r.event(te, corev1.EventTypeNormal, trainenvv1.ReasonCreatedPersistentVolumeClaim, "Create", "created workspace claim %s", desired.Name)
		return nil
	}
	if err != nil {
		return err
	}
	if live.Labels[workload.LabelEnvironment] != te.Name {
		return fmt.Errorf("PersistentVolumeClaim %s exists and does not belong to this environment; rename one of them", live.Name)
	}
	before := live.DeepCopy()
	want := desired.Spec.Resources.Requests[corev1.ResourceStorage]
	if have := live.Spec.Resources.Requests[corev1.ResourceStorage]; want.Cmp(have) > 0 {
		live.Spec.Resources.Requests[corev1.ResourceStorage] = want
	}
	if workload.KeepWorkspace(te) {
		live.OwnerReferences = withoutOwner(live.OwnerReferences, te.UID)
	} else if err := controllerutil.SetControllerReference(te, live, r.Scheme()); err != nil {
		return err
	}
	if equalClaims(before, live) {
		return nil
	}
	return r.Patch(ctx, live, client.MergeFrom(before), FieldOwner)
}

// observePod reports WorkloadReady from the environment's pod.
func (r *TrainingEnvironmentReconciler) observePod(ctx context.Context, p *pass) error {
	te, pinned := p.te, p.pinned
	if te.Spec.Suspend || idleSuspended(te) {
		te.Status.NodeName, te.Status.PodName, te.Status.Connect, te.Status.Preflight = "", "", nil, nil
		if !te.Spec.Suspend { // the event was emitted when the idle exit was recorded
			setWorkloadReady(te, metav1.ConditionFalse, trainenvv1.ReasonIdleSuspended, idleSuspendedMessage(te))
		} else if setWorkloadReady(te, metav1.ConditionFalse, trainenvv1.ReasonWorkloadSuspended,
			"scaled to zero because spec.suspend is true") {
			r.event(te, corev1.EventTypeNormal, trainenvv1.ReasonSuspended, "Suspend", "suspended: GPUs freed, workspace kept")
		}
		return nil
	}
	pod := &corev1.Pod{}
	err := r.Get(ctx, types.NamespacedName{Namespace: te.Namespace, Name: workload.PodName(te)}, pod)
	if apierrors.IsNotFound(err) {
		pod = nil
	} else if err != nil {
		return err
	}
	pf := preflightResult(pod)
	state := podState(pod, pf, pinned)
	te.Status.NodeName, te.Status.PodName = "", ""
	if pod != nil {
		te.Status.NodeName, te.Status.PodName = pod.Spec.NodeName, pod.Name
	}
	r.recordPreflight(te, pf)
	te.Status.Connect = nil
	if state.ready {
		te.Status.Connect = connectCommands(te)
	}
	status := metav1.ConditionFalse
	if state.ready {
		status = metav1.ConditionTrue
	}
	if setWorkloadReady(te, status, state.reason, state.message) && state.warning {
		r.event(te, corev1.EventTypeWarning, state.reason, "Start", "%s", state.message)
	}
	return nil
}

// stopOnVerificationLoss is the workload step's part of a digest failing verification: it
// applies spec.trust.onVerificationLoss when the workload exists (a signature deleted, a
// policy changed since it started), and returns the Verified message extended with what
// happened to the workload. Nothing new
// ever starts for a failing digest; Keep (the default) leaves what runs alone, Stop scales
// the StatefulSet to zero, keeping the workspace, until the digest passes again.
func (r *TrainingEnvironmentReconciler) stopOnVerificationLoss(ctx context.Context, p *pass, message string) (string, error) {
	te := p.te
	if te.Spec.Suspend {
		return message, nil
	}
	sts := &appsv1.StatefulSet{}
	err := r.Get(ctx, types.NamespacedName{Namespace: te.Namespace, Name: workload.StatefulSetName(te)}, sts)
	switch {
	case apierrors.IsNotFound(err):
		return message, nil
	case err != nil:
		return "", err
	case !metav1.IsControlledBy(sts, te):
		return message, nil
	}
	if te.Spec.Trust == nil || te.Spec.Trust.OnVerificationLoss != trainenvv1.VerificationLossStop {
		if sts.Spec.Replicas != nil && *sts.Spec.Replicas == 0 {
			return message, nil
		}
		return message + "; the running workload is KEPT because spec.trust.onVerificationLoss is Keep (the default): " +
			"set it to Stop to stop workloads whose image loses verification", nil
	}
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas > 0 {
		before := sts.DeepCopy()
		sts.Spec.Replicas = ptr.To[int32](0)
		// Without its spec hash, the workload step restores the StatefulSet once the
		// digest passes verification again.
		delete(sts.Annotations, workload.AnnotationSpecHash)
		if err := r.Patch(ctx, sts, client.MergeFrom(before), FieldOwner); err != nil {
			return "", err
		}
		r.event(te, corev1.EventTypeWarning, trainenvv1.ReasonWaitingForChecks, "Stop",
			"stopped StatefulSet %s: its image is no longer verified (spec.trust.onVerificationLoss: Stop)", sts.Name)
	}
	te.Status.Connect = nil
	setWorkloadReady(te, metav1.ConditionFalse, trainenvv1.ReasonWaitingForChecks,
		"stopped because the image is no longer verified (spec.trust.onVerificationLoss: Stop); the workspace is kept")
	return message + "; the workload was STOPPED (scaled to zero, workspace kept) because spec.trust.onVerificationLoss is Stop; " +
		"it starts again once the digest passes verification", nil
}

// setWorkloadReady is the only writer of the WorkloadReady condition.
func setWorkloadReady(te *trainenvv1.TrainingEnvironment, status metav1.ConditionStatus, reason, message string) bool {
	return setCondition(te, trainenvv1.ConditionWorkloadReady, status, reason, message)
}

func markWorkloadWaiting(te *trainenvv1.TrainingEnvironment) {
	// A step that did not run this pass leaves what an earlier pass observed (e.g. a
	// running workload) in place.
	if meta.FindStatusCondition(te.Status.Conditions, trainenvv1.ConditionWorkloadReady) == nil {
		setWorkloadReady(te, metav1.ConditionFalse, trainenvv1.ReasonWaitingForChecks,
			"no workload until the image is resolved, verified and compatible")
	}
}

func specOf(obj client.Object) any {
	switch o := obj.(type) {
	case *appsv1.StatefulSet:
		return o.Spec
	case *networkingv1.NetworkPolicy:
		return o.Spec
	case *resourceapi.ResourceClaimTemplate:
		return o.Spec
	}
	panic(fmt.Sprintf("no spec for %T", obj))
}

func kindOf(obj client.Object) string {
	switch obj.(type) {
	case *appsv1.StatefulSet:
		return "StatefulSet"
	case *corev1.Service:
		return "Service"
	case *networkingv1.NetworkPolicy:
		return "NetworkPolicy"
	case *resourceapi.ResourceClaimTemplate:
		return "ResourceClaimTemplate"
	}
	return fmt.Sprintf("%T", obj)
}

func withoutOwner(refs []metav1.OwnerReference, uid types.UID) []metav1.OwnerReference {
	out := refs[:0:0]
	for _, ref := range refs {
		if ref.UID != uid {
			out = append(out, ref)
		}
	}
	return out
}

func equalClaims(a, b *corev1.PersistentVolumeClaim) bool {
	return a.Spec.Resources.Requests.Storage().Cmp(*b.Spec.Resources.Requests.Storage()) == 0 &&
		len(a.OwnerReferences) == len(b.OwnerReferences)
}
