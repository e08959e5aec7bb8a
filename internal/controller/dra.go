package controller

import (
	"context"
	"sync"
	"sync/atomic"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
)

// +kubebuilder:rbac:groups=resource.k8s.io,resources=resourceslices,verbs=get;list;watch
// +kubebuilder:rbac:groups=resource.k8s.io,resources=resourceclaimtemplates,verbs=get;list;watch;create

// sliceSnapshot keeps the ResourceSlices between passes, as nodeSnapshot keeps the nodes:
// listed again only after the watch saw a change.
type sliceSnapshot struct {
	watched atomic.Bool
	version atomic.Uint64
	mu      sync.Mutex
	taken   uint64
	slices  []resourceapi.ResourceSlice
}

func (s *sliceSnapshot) changed() { s.version.Add(1) }

func (s *sliceSnapshot) list(ctx context.Context, c client.Reader) ([]resourceapi.ResourceSlice, error) {
	var l resourceapi.ResourceSliceList
	if !s.watched.Load() {
		err := c.List(ctx, &l, client.UnsafeDisableDeepCopy)
		return l.Items, err
	}
	v := s.version.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.taken == v+1 {
		return s.slices, nil
	}
	if err := c.List(ctx, &l, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	s.slices, s.taken = l.Items, v+1
	return s.slices, nil
}

// servesDRA tells whether the cluster serves resource.k8s.io/v1 ResourceSlices.
func servesDRA(mapper meta.RESTMapper) bool {
	_, err := mapper.RESTMapping(resourceapi.SchemeGroupVersion.WithKind("ResourceSlice").GroupKind(), resourceapi.SchemeGroupVersion.Version)
	return err == nil
}

// sliceToIncompatible maps a ResourceSlice change to the environments waiting for a
// compatible device.
func (r *TrainingEnvironmentReconciler) sliceToIncompatible(ctx context.Context, _ client.Object) []reconcile.Request {
	r.slices.changed()
	return r.environmentsWhere(ctx, func(te *trainenvv1.TrainingEnvironment) bool {
		return te.Spec.GPU != nil && te.Spec.GPU.DeviceClassName != "" &&
			meta.IsStatusConditionFalse(te.Status.Conditions, trainenvv1.ConditionCompatible)
	})
}

// sliceDevicesChanged passes creations, deletions and changes of a slice's devices or pool;
// the driver republishing the same devices starts nothing.
func sliceDevicesChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, okOld := e.ObjectOld.(*resourceapi.ResourceSlice)
			n, okNew := e.ObjectNew.(*resourceapi.ResourceSlice)
			if !okOld || !okNew {
				return true
			}
			return !equality.Semantic.DeepEqual(o.Spec, n.Spec)
		},
	}
}
