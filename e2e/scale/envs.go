//go:build scalebench

package main

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
)

func objKey(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }

// benchEnv is environment i: image i of the list (by tag, so that it is resolved), one
// GPU, no workspace or access (the bare pods have none either).
func benchEnv(cfg config, prefix string, i int, img benchImage, suspend bool) *trainenvv1.TrainingEnvironment {
	return &trainenvv1.TrainingEnvironment{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%05d", prefix, i), Namespace: nsName(i % cfg.namespaces)},
		Spec: trainenvv1.TrainingEnvironmentSpec{
			Image:   img.tag,
			GPU:     &trainenvv1.GPUSpec{Count: 1},
			Suspend: suspend,
		},
	}
}

// createEnvironments creates n environments at cfg.rate and returns their keys and when
// each create returned.
func createEnvironments(ctx context.Context, cl *cluster, cfg config, imgs []benchImage, prefix string, n int, rate float64, suspend bool) ([]string, []time.Time, error) {
	keys, created := make([]string, n), make([]time.Time, n)
	for i := range n {
		te := benchEnv(cfg, prefix, i, imgs[i%len(imgs)], suspend)
		keys[i] = te.Namespace + "/" + te.Name
	}
	err := parallel(ctx, n, cfg.workers, rate, func(i int) error {
		te := benchEnv(cfg, prefix, i, imgs[i%len(imgs)], suspend)
		if err := cl.c.Create(ctx, te); err != nil {
			return fmt.Errorf("creating %s: %w", keys[i], err)
		}
		created[i] = time.Now()
		return nil
	})
	return keys, created, err
}

// runEnvironments creates n environments and waits until every one is in a final phase.
func runEnvironments(ctx context.Context, cl *cluster, w *watcher, mgr *manager, cfg config, imgs []benchImage, prefix string, n int, rate float64) (*result, error) {
	logf("creating %d TrainingEnvironments (%s-*) at %.0f/s", n, prefix, rate)
	r := &result{name: prefix, n: n}
	before, err := takeSnapshot(ctx, cl, mgr)
	if err != nil {
		return r, err
	}
	if cfg.profileSeconds > 0 && n > len(imgs) {
		go mgr.profile(fmt.Sprintf("profile?seconds=%d", cfg.profileSeconds), prefix+"-cpu.pprof")
	}
	keys, created, err := createEnvironments(ctx, cl, cfg, imgs, prefix, n, rate, false)
	if err != nil {
		return r, err
	}
	err = poll(ctx, "environments in a final phase", n, cfg.stall, cfg.timeout, func() (int, error) {
		return w.count(w.final, keys), nil
	})
	r.phases = w.phases(keys)
	if err != nil {
		return r, fmt.Errorf("%w (phases: %v)", err, r.phases)
	}
	final := w.times(w.final, keys)
	r.converge = span(created, final)
	r.toWorkload = durations(created, w.times(w.workload, keys))
	r.toPod = durations(created, w.times(w.pod, keys))
	r.toFinal = durations(created, final)
	logf("%d environments final in %s (phases %v)", n, r.converge.Round(time.Millisecond), r.phases)
	mgr.profile("heap", prefix+"-heap.pprof")
	return r, r.finish(ctx, cl, mgr, before)
}

// steadyState restarts the manager with --sync-period, lets it work through its initial
// list (after a restart each tag is looked up once), then watches a window of several
// resync periods in which nothing changes: every environment is handed to the reconciler
// again each period, and none may write or ask the registry anything. It returns the new
// manager.
func steadyState(ctx context.Context, cl *cluster, old *manager, cfg config) (*result, *manager, error) {
	old.stop()
	r := &result{name: "steady"}
	mgr, err := startManager(ctx, cl, cfg, cfg.syncPeriod)
	if err != nil {
		return r, old, err
	}
	if err := poll(ctx, "initial list worked through", 1, cfg.stall, cfg.timeout, func() (int, error) {
		if _, err := mgr.workersStarted(); err != nil {
			return 0, nil
		}
		ss, err := mgr.metrics()
		if err != nil {
			return 0, nil
		}
		depth := total(ss.sum("workqueue_depth", func(l map[string]string) bool { return l["name"] == "trainingenvironment" },
			func(map[string]string) string { return "" }))
		if depth > 0 {
			return 0, nil
		}
		return 1, nil
	}); err != nil {
		return r, mgr, err
	}
	window := time.Duration(cfg.steadyPeriods) * cfg.syncPeriod
	logf("steady state: manager restarted with --sync-period %s; watching %s (%d resync periods)", cfg.syncPeriod, window, cfg.steadyPeriods)
	before, err := takeSnapshot(ctx, cl, mgr)
	if err != nil {
		return r, mgr, err
	}
	select {
	case <-ctx.Done():
		return r, mgr, ctx.Err()
	case <-time.After(window):
	}
	r.converge = window
	return r, mgr, r.finish(ctx, cl, mgr, before)
}

// restartWithPreloaded stops the manager, preloads suspended environments up to
// cfg.total, starts a new manager and measures its informer sync, memory and the time
// until every environment is final again.
func restartWithPreloaded(ctx context.Context, cl *cluster, w *watcher, old *manager, cfg config, imgs []benchImage) (*result, error) {
	old.stop()
	extra := cfg.total - cfg.envs - cfg.pacedEnvs - len(imgs)
	r := &result{name: "restart", n: cfg.total}
	logf("manager stopped; preloading %d suspended environments", max(extra, 0))
	idle, _, err := createEnvironments(ctx, cl, cfg, imgs, "idle", max(extra, 0), 0, true)
	if err != nil {
		return r, err
	}
	before, err := takeSnapshot(ctx, cl, nil)
	if err != nil {
		return r, err
	}
	mgr, err := startManager(ctx, cl, cfg, 0)
	if err != nil {
		return r, err
	}
	defer func() {
		if !cfg.keep {
			mgr.stop()
		}
	}()
	if err := poll(ctx, "informers synced", 1, cfg.stall, cfg.timeout, func() (int, error) {
		if _, err := mgr.workersStarted(); err != nil {
			return 0, nil
		}
		return 1, nil
	}); err != nil {
		return r, err
	}
	synced, _ := mgr.workersStarted()
	r.syncTime = synced.Sub(mgr.started)
	st, err := mgr.stats()
	if err != nil {
		return r, err
	}
	r.syncRSS = st.rss
	keys := append(envKeys(cfg, imgs), idle...)
	err = poll(ctx, "environments final after the restart", len(keys), cfg.stall, cfg.timeout, func() (int, error) {
		return w.count(w.final, keys), nil
	})
	r.phases = w.phases(keys)
	if err != nil {
		return r, fmt.Errorf("%w (phases: %v)", err, r.phases)
	}
	r.converge = time.Since(mgr.started)
	if err := r.finish(ctx, cl, mgr, before); err != nil {
		return r, err
	}
	r.cpu = r.stats.cpu // a new process: all of its CPU time
	return r, nil
}

// envKeys are the keys of the warm-up, measured and paced environments.
func envKeys(cfg config, imgs []benchImage) []string {
	var keys []string
	for i := range imgs {
		te := benchEnv(cfg, "warm", i, imgs[i], false)
		keys = append(keys, te.Namespace+"/"+te.Name)
	}
	for i := range cfg.envs {
		te := benchEnv(cfg, "env", i, imgs[i%len(imgs)], false)
		keys = append(keys, te.Namespace+"/"+te.Name)
	}
	for i := range cfg.pacedEnvs {
		te := benchEnv(cfg, "paced", i, imgs[i%len(imgs)], false)
		keys = append(keys, te.Namespace+"/"+te.Name)
	}
	return keys
}
