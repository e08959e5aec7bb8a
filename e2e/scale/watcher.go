//go:build scalebench

package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/workload"
)

// watcher notes, from watches, when each object first reached a state: a
// TrainingEnvironment its final phase, a StatefulSet its creation, a bare pod Running.
// Watch events arrive within milliseconds, so these times are what a user would see.
type watcher struct {
	cache cache.Cache

	mu       sync.Mutex
	final    map[string]time.Time // environment → first seen in a final phase
	phase    map[string]trainenvv1.Phase
	workload map[string]time.Time // environment (= StatefulSet) → StatefulSet first seen
	running  map[string]time.Time // bare pod → first seen Running and Ready
	pod      map[string]time.Time // environment → its pod first seen
}

// finalPhases are the phases an environment stays in without a change.
var finalPhases = map[trainenvv1.Phase]bool{trainenvv1.PhaseRunning: true, trainenvv1.PhaseFailed: true, trainenvv1.PhaseSuspended: true}

const bareLabel = "bench.trainenv.io/bare"

func newWatcher(ctx context.Context, cl *cluster) (*watcher, error) {
	c, err := cache.New(cl.cfgREST, cache.Options{Scheme: cl.scheme})
	if err != nil {
		return nil, err
	}
	w := &watcher{cache: c, final: map[string]time.Time{}, phase: map[string]trainenvv1.Phase{},
		workload: map[string]time.Time{}, running: map[string]time.Time{}, pod: map[string]time.Time{}}
	handlers := map[client.Object]func(any){
		&trainenvv1.TrainingEnvironment{}: w.onEnvironment,
		&appsv1.StatefulSet{}:             w.onStatefulSet,
		&corev1.Pod{}:                     w.onPod,
	}
	for obj, on := range handlers {
		inf, err := c.GetInformer(ctx, obj)
		if err != nil {
			return nil, err
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc: on, UpdateFunc: func(_, o any) { on(o) },
		}); err != nil {
			return nil, err
		}
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the benchmark's watches did not sync")
	}
	return w, nil
}

func key(obj client.Object) string { return obj.GetNamespace() + "/" + obj.GetName() }

func (w *watcher) onEnvironment(o any) {
	te, ok := o.(*trainenvv1.TrainingEnvironment)
	if !ok {
		return
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	k := key(te)
	w.phase[k] = te.Status.Phase
	if _, seen := w.final[k]; !seen && finalPhases[te.Status.Phase] && te.Status.ObservedGeneration == te.Generation {
		w.final[k] = now
	}
}

func (w *watcher) onStatefulSet(o any) {
	sts, ok := o.(*appsv1.StatefulSet)
	if !ok {
		return
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, seen := w.workload[key(sts)]; !seen {
		w.workload[key(sts)] = now
	}
}

func (w *watcher) onPod(o any) {
	pod, ok := o.(*corev1.Pod)
	if !ok {
		return
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if env := pod.Labels[workload.LabelEnvironment]; env != "" {
		if _, seen := w.pod[pod.Namespace+"/"+env]; !seen {
			w.pod[pod.Namespace+"/"+env] = now
		}
	}
	if pod.Labels[bareLabel] == "" || pod.Status.Phase != corev1.PodRunning || !podReady(pod) {
		return
	}
	if _, seen := w.running[key(pod)]; !seen {
		w.running[key(pod)] = now
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// count returns how many of keys have an entry in m.
func (w *watcher) count(m map[string]time.Time, keys []string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, k := range keys {
		if _, ok := m[k]; ok {
			n++
		}
	}
	return n
}

// times returns the entries of m for keys (zero where missing).
func (w *watcher) times(m map[string]time.Time, keys []string) []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]time.Time, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}

// phases counts the current phases of keys.
func (w *watcher) phases(keys []string) map[trainenvv1.Phase]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[trainenvv1.Phase]int{}
	for _, k := range keys {
		out[w.phase[k]]++
	}
	return out
}

// barePods counts the bare pods still in the cache.
func (w *watcher) barePods(ctx context.Context) (int, error) {
	var list corev1.PodList
	err := w.cache.List(ctx, &list, client.HasLabels{bareLabel})
	return len(list.Items), err
}
