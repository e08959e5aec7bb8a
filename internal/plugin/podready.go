package plugin

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/trainenv/trainenv/internal/workload"
)

// waitPodReady waits up to d before the next connection attempt, and returns early when
// the environment's pod becomes Running and Ready. A pod re-created after a deletion, a
// resume or an eviction is reconnected to as soon as it is ready, not when a backoff that
// grew during the outage (up to 30 s) runs out. Whatever goes wrong here (no permission to
// watch, the environment gone) only means waiting out d, as before.
func (c *clients) waitPodReady(ctx context.Context, name string, d time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	te, err := c.environment(ctx, name)
	if err != nil {
		<-ctx.Done()
		return
	}
	podName := te.Status.PodName
	if podName == "" {
		podName = workload.PodName(te)
	}
	if !awaitPodReady(ctx, c.kube, c.namespace, podName) {
		<-ctx.Done()
	}
}

// awaitPodReady reports whether the pod became Running and Ready before ctx ended. A pod
// that already is when the wait starts does not count: the attempt that just failed saw
// it, so something else is wrong and retrying at once would only spin.
func awaitPodReady(ctx context.Context, kube kubernetes.Interface, namespace, podName string) bool {
	selector := "metadata.name=" + podName
	list, err := kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{FieldSelector: selector})
	if err != nil {
		return false
	}
	rv := list.ResourceVersion
	for ctx.Err() == nil {
		w, err := kube.CoreV1().Pods(namespace).Watch(ctx, metav1.ListOptions{
			FieldSelector: selector, ResourceVersion: rv, AllowWatchBookmarks: true,
		})
		if err != nil {
			return false
		}
		before := rv
		if ready, ended := nextReady(ctx, w, podName, &rv); !ended {
			return ready
		} else if rv == before {
			// A watch that ends before any event (an expired resource version, a proxy
			// closing it) is not retried in a loop: wait out the delay instead.
			return false
		}
	}
	return false
}

// nextReady reads w until the pod is seen ready (true, false), ctx ends (false, false) or
// the watch ends (false, true: watch again from rv).
func nextReady(ctx context.Context, w watch.Interface, podName string, rv *string) (ready, ended bool) {
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, false
		case ev, open := <-w.ResultChan():
			if !open {
				return false, true
			}
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || p.Name != podName {
				continue
			}
			*rv = p.ResourceVersion
			if podReady(p) {
				return true, false
			}
		}
	}
}

// podReady: running, not being deleted, and its Ready condition true (its servers listen).
func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
