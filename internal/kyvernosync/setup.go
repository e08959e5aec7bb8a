package kyvernosync

import (
	"context"
	"time"

	policiesv1 "github.com/kyverno/api/api/policies.kyverno.io/v1"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/trainenv/trainenv/internal/trust/policy"
)

// The RBAC this controller needs beyond the manager's (which reads ClusterImagePolicies,
// TrustRoots and the key Secrets) is in config/kyverno/role.yaml, not in +kubebuilder:rbac
// markers: those would grant it to every install, and it is bound only where
// --kyverno-policy is on (config/kyverno, the chart's kyvernoPolicy.enabled).

// Options configure Setup. Zero values take the defaults.
type Options struct {
	// Source supplies TrustRoots and key Secrets. Required.
	Source policy.PolicySource
	// Resync: every policy is re-generated this often (default 5 minutes).
	Resync time.Duration
	// Retry: a failed generation is retried this soon (default 1 minute).
	Retry time.Duration
	// CRDPoll: how often to look for Kyverno's CRD while it is not installed (default 1 minute).
	CRDPoll time.Duration
}

// imageValidatingPolicy is the kind the controller writes (Kyverno v1.19 serves v1 and stores it).
var imageValidatingPolicy = schema.GroupVersionKind{Group: policiesv1.GroupVersion.Group, Version: policiesv1.GroupVersion.Version, Kind: "ImageValidatingPolicy"}

// Setup registers the controller with mgr. It runs on the elected leader only, and starts
// once Kyverno's ImageValidatingPolicy CRD is served: until then it logs that Kyverno
// policies are not generated and looks again every CRDPoll, so a manager started before
// Kyverno (or without it) runs normally. Call before mgr.Start.
func Setup(mgr ctrl.Manager, o Options) error {
	if o.Resync <= 0 {
		o.Resync = 5 * time.Minute
	}
	if o.Retry <= 0 {
		o.Retry = time.Minute
	}
	if o.CRDPoll <= 0 {
		o.CRDPoll = time.Minute
	}
	if err := policiesv1.Install(mgr.GetScheme()); err != nil {
		return err
	}
	r := &Reconciler{
		Client: mgr.GetClient(), Source: o.Source, Recorder: mgr.GetEventRecorder("trainenv-kyverno-policy"),
		Resync: o.Resync, Retry: o.Retry,
	}
	return mgr.Add(&starter{mgr: mgr, r: r, poll: o.CRDPoll})
}

// starter waits for Kyverno's CRD, then adds the controller to the running manager (which
// starts it at once). Registering it before the CRD exists would fail the manager: the
// controller's watch would time out waiting for its cache to sync.
type starter struct {
	mgr  ctrl.Manager
	r    *Reconciler
	poll time.Duration
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: one writer.
func (s *starter) NeedLeaderElection() bool { return true }

// Start implements manager.Runnable.
func (s *starter) Start(ctx context.Context) error {
	log := s.mgr.GetLogger().WithName("kyverno-policy")
	for warned := false; ; {
		// The manager's REST mapper looks a group it does not know up again on every call.
		_, err := s.mgr.GetRESTMapper().RESTMapping(imageValidatingPolicy.GroupKind(), imageValidatingPolicy.Version)
		if err == nil {
			break
		}
		switch {
		case !meta.IsNoMatchError(err):
			log.Error(err, "looking up Kyverno's ImageValidatingPolicy kind; trying again", "in", s.poll)
		case !warned:
			log.Info("WARNING: --kyverno-policy is on but Kyverno's ImageValidatingPolicy CRD ("+imageValidatingPolicy.GroupVersion().String()+
				") is not installed: no Kyverno policies are generated until it is; looking for it periodically", "every", s.poll)
			warned = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.poll):
		}
	}
	log.Info("Kyverno's ImageValidatingPolicy CRD is installed: generating one Kyverno policy per ClusterImagePolicy")
	return s.r.SetupWithManager(s.mgr)
}

// SetupWithManager registers the controller and its watches.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("kyverno-policy").
		For(&pcv1alpha1.ClusterImagePolicy{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// Spec edits by others are taken back; Kyverno's status writes start no pass.
		Owns(&policiesv1.ImageValidatingPolicy{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&pcv1alpha1.TrustRoot{}, handler.EnqueueRequestsFromMapFunc(r.policiesUsing),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Complete(r)
}

// policiesUsing maps a TrustRoot to the ClusterImagePolicies whose authorities name it.
func (r *Reconciler) policiesUsing(ctx context.Context, obj client.Object) []reconcile.Request {
	var list pcv1alpha1.ClusterImagePolicyList
	if err := r.List(ctx, &list); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if usesTrustRoot(&list.Items[i], obj.GetName()) {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: list.Items[i].Name}})
		}
	}
	return reqs
}

func usesTrustRoot(cip *pcv1alpha1.ClusterImagePolicy, name string) bool {
	for _, a := range cip.Spec.Authorities {
		if (a.Keyless != nil && a.Keyless.TrustRootRef == name) || (a.CTLog != nil && a.CTLog.TrustRootRef == name) {
			return true
		}
	}
	return false
}
