// Package controller holds the TrainingEnvironment reconciler: a short list of named steps
// (resolve → verify → check compatibility → ensure workload), each in its own file and the
// only writer of its condition (see conditions.go for who sets which), then a summary, with
// one status patch per pass.
package controller

import (
	"context"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/reconcileerror"
	"github.com/trainenv/trainenv/internal/registry"
	"github.com/trainenv/trainenv/internal/trust"
)

// FieldOwner is the field manager of every write the controller makes.
const FieldOwner = client.FieldOwner("trainenv")

// TrainingEnvironmentReconciler reconciles TrainingEnvironments.
type TrainingEnvironmentReconciler struct {
	client.Client
	// APIReader reads objects the manager does not cache (pull Secrets: caching them would
	// need list/watch on every Secret of the cluster).
	APIReader client.Reader
	Recorder  events.EventRecorder
	Resolver  *registry.Resolver
	Verifier  trust.Verifier
	Clock     clock.PassiveClock
	// AccessLogs reads the environments' audit trails from their pods' logs (accesslog.go);
	// nil: status.lastAccess and status.activity are not kept.
	AccessLogs LogReader
	// ToolsImage is the operator's own image, which carries the in-pod entrypoint and
	// preflight (see workload.Inputs).
	ToolsImage string

	// tagChecked remembers, per environment, when its tag was last looked up (a tagCheck).
	// Kept in memory, not status, so that a steady state writes nothing; after a restart
	// each tagged environment costs one HEAD request.
	tagChecked sync.Map
	// nodes is the node list of the last node change (nodesnapshot.go).
	nodes nodeSnapshot
	// slices is the ResourceSlice list of the last slice change (dra.go).
	slices sliceSnapshot
	// tags shares anonymous tag lookups among environments for a few seconds (tagshare.go).
	tags tagShare
	// readySeen holds, by name, the UID of each environment seen Ready, so that the time
	// to Ready is observed once per environment (see observeReady).
	readySeen sync.Map
	// accessLog remembers where each environment's audit trail was last read (accesslog.go).
	accessLog accessLogs
}

// pass carries what one reconcile learns from step to step.
type pass struct {
	te *trainenvv1.TrainingEnvironment
	// pinned is repository@digest, set by the resolve step.
	pinned string
	// candidate is the tag's new digest under FollowTag, pinned only once verified.
	candidate *registry.Resolution
	// keychain holds the environment's pull secrets, set by the resolve step when it reads
	// them (nil: anonymous).
	keychain authn.Keychain
	// affinity admits exactly the compatible nodes, set by the compatibility step.
	affinity []corev1.NodeSelectorTerm
	// cudaRequirements are the requirements affinity was computed from, for the preflight.
	cudaRequirements []string
	// deviceSelectors are the CEL selectors of the GPU claim (gpu.deviceClassName), set by
	// the compatibility step.
	deviceSelectors []string
	// pinNote says what this pass pinned, for one event at its end (announcePin), unless
	// the CreatedWorkload event tells it first.
	pinNote string
	// result collects the requeue wishes of the steps (the earliest wins).
	result ctrl.Result
}

func (p *pass) requeueAfter(d time.Duration) {
	if d > 0 && (p.result.RequeueAfter == 0 || d < p.result.RequeueAfter) {
		p.result.RequeueAfter = d
	}
}

// +kubebuilder:rbac:groups=trainenv.io,resources=trainingenvironments,verbs=get;list;watch
// +kubebuilder:rbac:groups=trainenv.io,resources=trainingenvironments/status,verbs=patch
// +kubebuilder:rbac:groups=apps,resources=statefulsets,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=pods;nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods/log,verbs=get
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;create
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=policy.sigstore.dev,resources=clusterimagepolicies;trustroots,verbs=get;list;watch

// Reconcile runs one pass over a TrainingEnvironment.
func (r *TrainingEnvironmentReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	te := &trainenvv1.TrainingEnvironment{}
	if err := r.Get(ctx, req.NamespacedName, te); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	// Owner references let the garbage collector remove the workload: no finalizer needed.
	if !te.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}

	before := te.DeepCopy()
	p := &pass{te: te}
	defer func() {
		if err := r.patchStatus(ctx, before, te); err != nil && retErr == nil {
			retErr = err
		}
	}()

	err := r.runSteps(ctx, p)
	r.announcePin(p)
	summarize(te, err)
	r.observeReady(before, te)
	if err == nil || reconcileerror.IsStalled(err) {
		// The pass reached a verdict on this generation: the conditions describe it.
		te.Status.ObservedGeneration = te.Generation
	}
	if err != nil && !reconcileerror.IsStalled(err) {
		log.FromContext(ctx).V(1).Info("pass did not finish", "reason", err.Error())
	}
	return reconcileerror.ToResult(p.result, err)
}

// runSteps runs the steps in order and stops at the first that cannot finish; the steps
// after it mark their conditions as waiting.
func (r *TrainingEnvironmentReconciler) runSteps(ctx context.Context, p *pass) error {
	steps := []struct {
		run     func(context.Context, *pass) error
		waiting func(*trainenvv1.TrainingEnvironment)
	}{
		{r.resolveImage, nil},
		{r.verifyImage, markVerifyWaiting},
		{r.checkCompatibility, markCompatibilityWaiting},
		{r.ensureWorkload, markWorkloadWaiting},
	}
	for i, step := range steps {
		if err := step.run(ctx, p); err != nil {
			for _, later := range steps[i+1:] {
				later.waiting(p.te)
			}
			return err
		}
	}
	return nil
}

// patchStatus writes the status once per pass, and only when it changed: a no-op pass
// makes no API write.
func (r *TrainingEnvironmentReconciler) patchStatus(ctx context.Context, before, after *trainenvv1.TrainingEnvironment) error {
	if equality.Semantic.DeepEqual(before.Status, after.Status) {
		return nil
	}
	if err := r.Status().Patch(ctx, after, client.MergeFrom(before), FieldOwner); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	return nil
}

func (r *TrainingEnvironmentReconciler) forget(key types.NamespacedName) {
	r.tagChecked.Delete(key)
	r.readySeen.Delete(key)
	r.accessLog.seen.Delete(key)
}
