package controller

import (
	"context"

	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/workload"
)

// SetupWithManager registers the reconciler and its watches.
func (r *TrainingEnvironmentReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	r.nodes.watched.Store(true) // the node watch below keeps the node snapshot fresh
	b := ctrl.NewControllerManagedBy(mgr)
	if servesDRA(mgr.GetRESTMapper()) {
		// GPUs through Dynamic Resource Allocation: devices come and go with ResourceSlices.
		r.slices.watched.Store(true)
		b = b.Watches(&resourceapi.ResourceSlice{}, handler.EnqueueRequestsFromMapFunc(r.sliceToIncompatible),
			builder.WithPredicates(sliceDevicesChanged()))
	}
	return b.
		Named("trainingenvironment").
		WithOptions(opts).
		// Status writes do not bump the generation: our own patches start no new pass.
		// Annotations do not either; the resume request of `kubectl trainenv resume` is one.
		For(&trainenvv1.TrainingEnvironment{}, builder.WithPredicates(predicate.Or[client.Object](
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		// Only changes a pass can act on start one (predicates.go).
		Owns(&appsv1.StatefulSet{}, builder.WithPredicates(ownedChanged())).
		Owns(&networkingv1.NetworkPolicy{}, builder.WithPredicates(ownedChanged())).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(podToEnvironment), builder.WithPredicates(podChanged())).
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(r.nodeToIncompatible),
			builder.WithPredicates(nodeFactsChanged())).
		// A policy that changes can admit or refuse images: re-verify every environment.
		Watches(&pcv1alpha1.ClusterImagePolicy{}, handler.EnqueueRequestsFromMapFunc(r.allEnvironments)).
		Watches(&pcv1alpha1.TrustRoot{}, handler.EnqueueRequestsFromMapFunc(r.allEnvironments)).
		Complete(r)
}

// podToEnvironment maps a pod to its environment by label.
func podToEnvironment(_ context.Context, obj client.Object) []reconcile.Request {
	name, ok := obj.GetLabels()[workload.LabelEnvironment]
	if !ok {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}}}
}

// nodeToIncompatible maps a node change to the environments waiting for a compatible node:
// their pass stalled, and only a node change can unstall it.
func (r *TrainingEnvironmentReconciler) nodeToIncompatible(ctx context.Context, _ client.Object) []reconcile.Request {
	r.nodes.changed()
	return r.environmentsWhere(ctx, func(te *trainenvv1.TrainingEnvironment) bool {
		return meta.IsStatusConditionFalse(te.Status.Conditions, trainenvv1.ConditionCompatible)
	})
}

// allEnvironments maps a trust policy change to every environment: the verifier's cache
// is keyed by policy generation, so environments whose verdict did not change cost nothing.
func (r *TrainingEnvironmentReconciler) allEnvironments(ctx context.Context, _ client.Object) []reconcile.Request {
	return r.environmentsWhere(ctx, func(*trainenvv1.TrainingEnvironment) bool { return true })
}

// environmentsWhere lists the cached environments that keep returns true for.
func (r *TrainingEnvironmentReconciler) environmentsWhere(ctx context.Context, keep func(*trainenvv1.TrainingEnvironment) bool) []reconcile.Request {
	// Read only, for their keys: no deep copy (at 10,000 environments, each node of a
	// restarting manager's initial list copied every environment).
	var list trainenvv1.TrainingEnvironmentList
	if err := r.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if keep(&list.Items[i]) {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return reqs
}

// nodeFactsChanged passes node events that can change compatibility: new and removed
// nodes, labels and allocatable resources. Heartbeats (status conditions) are dropped.
func nodeFactsChanged() predicate.Funcs {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			oldNode, okOld := e.ObjectOld.(*corev1.Node)
			newNode, okNew := e.ObjectNew.(*corev1.Node)
			if !okOld || !okNew {
				return false
			}
			return !equality.Semantic.DeepEqual(oldNode.Labels, newNode.Labels) ||
				!equality.Semantic.DeepEqual(oldNode.Status.Allocatable, newNode.Status.Allocatable)
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// event records an events.k8s.io Event about te.
func (r *TrainingEnvironmentReconciler) event(te *trainenvv1.TrainingEnvironment, eventType, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(te, nil, eventType, reason, action, note, args...)
	}
}
