package controller

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// Most updates of the objects trainenv owns change nothing the reconciler reads: the
// StatefulSet controller updates its status three or four times per rollout, the kubelet
// and the scheduler update a pod's status many times. At 5,000 environments those passes
// were about ten per environment, each a reconcile waiting on the API server
// (docs/benchmarks.md). The predicates below pass only the changes a pass can act on.

// ownedChanged passes updates of an owned StatefulSet or NetworkPolicy that ensureOwned can
// act on: its spec (through the generation), the spec-hash annotation, labels, owner
// references or deletion.
// Creates are dropped: trainenv creates these objects itself, in the pass that then goes
// on; after a restart every environment is handed to the reconciler anyway.
func ownedChanged() predicate.Funcs {
	return predicate.Funcs{
		CreateFunc: func(event.CreateEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			if e.ObjectOld == nil || e.ObjectNew == nil {
				return true
			}
			o, n := e.ObjectOld, e.ObjectNew
			return o.GetGeneration() != n.GetGeneration() ||
				!equality.Semantic.DeepEqual(o.GetAnnotations(), n.GetAnnotations()) ||
				!equality.Semantic.DeepEqual(o.GetLabels(), n.GetLabels()) ||
				!equality.Semantic.DeepEqual(o.GetOwnerReferences(), n.GetOwnerReferences()) ||
				!o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp())
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// podChanged passes pod updates that change what observePod and the idle check read (see
// podView); heartbeat-like updates (ready timestamps, restart counts alone, IPs) are dropped.
func podChanged() predicate.Funcs {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, okOld := e.ObjectOld.(*corev1.Pod)
			n, okNew := e.ObjectNew.(*corev1.Pod)
			if !okOld || !okNew {
				return true
			}
			return !equality.Semantic.DeepEqual(podViewOf(o), podViewOf(n))
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// podView is everything of a pod that podState, preflightResult, idleExit and the status
// (node, pod name) depend on. Keep it in step with those functions.
// (Fields are exported for equality.Semantic, which refuses unexported ones.)
type podView struct {
	Labels     map[string]string
	Deleting   bool
	NodeName   string
	Phase      corev1.PodPhase
	Images     []string // name=image of each container
	Conditions []corev1.PodCondition
	Containers []containerView
}

type containerView struct {
	Name        string
	State, Last corev1.ContainerState
}

func podViewOf(p *corev1.Pod) podView {
	v := podView{Labels: p.Labels, Deleting: p.DeletionTimestamp != nil, NodeName: p.Spec.NodeName, Phase: p.Status.Phase}
	for _, c := range p.Spec.Containers {
		v.Images = append(v.Images, c.Name+"="+c.Image)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled || c.Type == corev1.PodReady {
			// The probe and transition times move without a change of meaning.
			c.LastProbeTime, c.LastTransitionTime = metav1.Time{}, metav1.Time{}
			v.Conditions = append(v.Conditions, c)
		}
	}
	for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, cs := range list {
			v.Containers = append(v.Containers, containerView{Name: cs.Name, State: cs.State, Last: cs.LastTerminationState})
		}
	}
	return v
}
