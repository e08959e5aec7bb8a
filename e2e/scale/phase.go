//go:build scalebench

package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
)

// result is what one phase of the benchmark measured.
type result struct {
	name       string
	n          int
	converge   time.Duration   // first create → last object in its final state
	toWorkload []time.Duration // create → StatefulSet (environments only)
	toPod      []time.Duration // create → pod (environments only; the StatefulSet controller's part)
	toFinal    []time.Duration // create → final state
	apiWrites  map[string]float64
	mgrWrites  float64 // the manager's own writes
	reconciles float64
	registry   registryCounts
	stats      procStats // the manager's, at the end of the phase
	cpu        time.Duration
	phases     map[trainenvv1.Phase]int
	syncTime   time.Duration // restart only: process start → informers synced
	syncRSS    int64
}

// snapshot holds the counters a phase is measured against.
type snapshot struct {
	api, mgr samples
	regFrom  int64
	stats    procStats
}

func takeSnapshot(ctx context.Context, cl *cluster, mgr *manager) (snapshot, error) {
	var s snapshot
	var err error
	s.regFrom = newRegistryLog(cl.cfg).offset()
	if s.api, err = scrapeAPIServer(ctx, cl); err != nil {
		return s, err
	}
	if mgr != nil {
		if s.mgr, err = mgr.metrics(); err != nil {
			return s, err
		}
		if s.stats, err = mgr.stats(); err != nil {
			return s, err
		}
	}
	return s, nil
}

// finish fills the counters of r: what changed since before.
func (r *result) finish(ctx context.Context, cl *cluster, mgr *manager, before snapshot) error {
	after, err := takeSnapshot(ctx, cl, mgr)
	if err != nil {
		return err
	}
	r.apiWrites = diff(apiWrites(before.api), apiWrites(after.api))
	r.mgrWrites = managerWrites(after.api) - managerWrites(before.api)
	if mgr != nil {
		rec := func(ss samples) float64 {
			return total(ss.sum("controller_runtime_reconcile_total", func(map[string]string) bool { return true },
				func(map[string]string) string { return "" }))
		}
		r.reconciles = rec(after.mgr) - rec(before.mgr)
		r.stats, r.cpu = after.stats, after.stats.cpu-before.stats.cpu
	}
	r.registry, err = newRegistryLog(cl.cfg).countSince(before.regFrom)
	return err
}

// durations returns t[i] - from[i] for the entries where both are set.
func durations(from, t []time.Time) []time.Duration {
	var out []time.Duration
	for i := range t {
		if !t[i].IsZero() && !from[i].IsZero() {
			out = append(out, max(t[i].Sub(from[i]), 0))
		}
	}
	return out
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// span is the time from the earliest of from to the latest of to.
func span(from, to []time.Time) time.Duration {
	var first, last time.Time
	for _, t := range from {
		if first.IsZero() || !t.IsZero() && t.Before(first) {
			first = t
		}
	}
	for _, t := range to {
		if t.After(last) {
			last = t
		}
	}
	return last.Sub(first)
}

// createNamespaces creates n namespaces that enforce Pod Security "restricted" and waits
// for their default ServiceAccounts (no pod can be created before).
func createNamespaces(ctx context.Context, cl *cluster, n int) error {
	err := parallel(ctx, n, 8, 0, func(i int) error {
		return ensure(ctx, cl.c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsName(i), Labels: map[string]string{
			"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest",
		}}})
	})
	if err != nil {
		return err
	}
	return poll(ctx, "namespaces' default ServiceAccounts", n, 30*time.Second, 2*time.Minute, func() (int, error) {
		done := 0
		for i := range n {
			var sa corev1.ServiceAccount
			if cl.c.Get(ctx, objKey(nsName(i), "default"), &sa) == nil {
				done++
			}
		}
		return done, nil
	})
}

func nsName(i int) string { return fmt.Sprintf("bench-%03d", i) }
