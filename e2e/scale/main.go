//go:build scalebench

// Command scale is trainenv's scale benchmark (make bench-scale). On the local control
// plane of e2e/cluster/up.sh it creates simulated GPU node pools, signed images of many
// CUDA versions and a ClusterImagePolicy trusting their key, then measures, in one run:
//
//   - a baseline: the same number of bare pods (the environments' own pod template, same
//     image by digest, GPU request and node affinity) created directly;
//   - the same number of TrainingEnvironments, converged by the manager running as a
//     non-admin identity (so API priority and fairness applies) without
//     --allow-unmatched-images (so every verification is real);
//   - a steady-state window of several resync periods, in which nothing may be written
//     and the registry must not be asked anything;
//   - more environments at a rate the cluster sustains, for latency without queueing;
//   - a restart of the manager against many pre-existing environments.
//
// It prints a table and fails if a run stalls, times out, or misses a goal. Progress is
// judged as kwok's own scale tests judge it: polled once a second, failed when nothing
// progresses for --stall, and bounded by --timeout.
//
// The build tag keeps it out of `go test ./...`; `go vet -tags scalebench ./e2e/scale/`
// keeps it compiling.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/resource"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// config is the benchmark's command line.
type config struct {
	root, binDir, stateDir, manager string
	nodes, envs, total, namespaces  int
	images, workers, concurrency    int
	componentQPS                    int
	rate, pacedRate                 float64
	pacedEnvs                       int
	memoryLimit                     int64 // bytes; 0: none
	stall, timeout, syncPeriod      time.Duration
	steadyPeriods, profileSeconds   int
	keep, skipBaseline              bool
}

// goMemLimit is the GOMEMLIMIT the manager sets itself in a container with the
// configured memory limit (cmd/memlimit.go: 90 %).
func (c config) goMemLimit() int64 { return int64(float64(c.memoryLimit) * 0.9) }

func parseFlags() config {
	var c config
	flag.StringVar(&c.root, "root", ".", "the trainenv checkout (e2e/cluster, config/)")
	flag.StringVar(&c.binDir, "bin", "bin/k8s/v1.37.2", "directory with kube-apiserver, etcd, kwok, ... (up.sh's BIN_DIR)")
	flag.StringVar(&c.stateDir, "state", "bin/scale", "state directory of the benchmark's own cluster (up.sh's STATE_DIR)")
	flag.StringVar(&c.manager, "manager", "bin/manager", "the manager binary (make build)")
	flag.IntVar(&c.nodes, "nodes", 1000, "simulated GPU nodes, spread over the pools")
	flag.IntVar(&c.envs, "envs", 5000, "TrainingEnvironments (and bare pods in the baseline)")
	flag.IntVar(&c.total, "restart-envs", 10000, "environments present when the manager is restarted (the rest are preloaded suspended)")
	flag.IntVar(&c.namespaces, "namespaces", 50, "namespaces the environments are spread over")
	flag.IntVar(&c.images, "images", 20, "signed images, each of another CUDA version")
	flag.Float64Var(&c.rate, "rate", 100, "creates per second (environments, and pods in the baseline)")
	flag.IntVar(&c.workers, "workers", 16, "parallel create calls")
	flag.IntVar(&c.pacedEnvs, "paced-envs", 200, "environments created at --paced-rate after the steady state, for latency at a rate the cluster sustains")
	flag.Float64Var(&c.pacedRate, "paced-rate", 10, "creates per second of the paced phase")
	flag.IntVar(&c.componentQPS, "component-qps", 300, "client QPS of kube-controller-manager and kube-scheduler (burst 2x; 0: up.sh's defaults, 20 and 50)")
	flag.IntVar(&c.concurrency, "max-concurrent-reconciles", 8, "the manager's --max-concurrent-reconciles")
	memoryLimit := flag.String("memory-limit", "", "run the manager as in a container with this memory limit (e.g. 512Mi: GOMEMLIMIT at 90 %, as the manager sets it from its cgroup); empty: none")
	flag.DurationVar(&c.stall, "stall", 60*time.Second, "fail when nothing converges for this long")
	flag.DurationVar(&c.timeout, "timeout", 15*time.Minute, "hard limit for each phase")
	flag.DurationVar(&c.syncPeriod, "sync-period", 20*time.Second, "the manager's --sync-period (resync of every cached object) in the steady-state window; the other phases run with its default, 10 h")
	flag.IntVar(&c.steadyPeriods, "steady-periods", 3, "length of the steady-state window, in sync periods")
	flag.IntVar(&c.profileSeconds, "profile-seconds", 30, "CPU-profile the manager for this long from the start of the measured run (STATE/profiles; 0: off)")
	flag.BoolVar(&c.keep, "keep", false, "leave the cluster and the manager running afterwards")
	flag.BoolVar(&c.skipBaseline, "skip-baseline", false, "skip the bare-pod baseline (development only)")
	flag.Parse()
	if *memoryLimit != "" {
		q, err := resource.ParseQuantity(*memoryLimit)
		if err != nil {
			fmt.Fprintln(os.Stderr, "--memory-limit:", err)
			os.Exit(2)
		}
		c.memoryLimit = q.Value()
	}
	for _, p := range []*string{&c.root, &c.binDir, &c.stateDir, &c.manager} {
		if abs, err := filepath.Abs(*p); err == nil {
			*p = abs
		}
	}
	if c.total < c.envs+c.pacedEnvs {
		c.total = c.envs + c.pacedEnvs
	}
	return c
}

func main() {
	cfg := parseFlags()
	// The benchmark's own watches log nothing worth reading.
	ctrllog.SetLogger(logr.Discard())
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	rep, err := run(ctx, cfg)
	cancel()
	if rep != nil {
		rep.print(os.Stdout)
	}
	if err == nil {
		err = rep.check()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-scale: FAIL:", err)
		os.Exit(1)
	}
	fmt.Println("bench-scale: PASS")
}

func run(ctx context.Context, cfg config) (*report, error) {
	cl, err := startCluster(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if !cfg.keep {
		defer cl.stop()
	}
	rep := newReport(cfg)
	if err := tuneComponents(cfg); err != nil {
		return rep, err
	}
	if err := createNodes(ctx, cl, cfg.nodes); err != nil {
		return rep, err
	}
	imgs, err := pushSignedImages(ctx, cl, cfg.images)
	if err != nil {
		return rep, err
	}
	if err := createNamespaces(ctx, cl, cfg.namespaces); err != nil {
		return rep, err
	}
	w, err := newWatcher(ctx, cl)
	if err != nil {
		return rep, err
	}
	if !cfg.skipBaseline {
		if rep.baseline, err = runBaseline(ctx, cl, w, cfg, imgs); err != nil {
			return rep, err
		}
	}
	// The measured phases run with the manager's default resync (10 h), as deployed; the
	// steady-state window restarts it with --sync-period.
	mgr, err := startManager(ctx, cl, cfg, 0)
	if err != nil {
		return rep, err
	}
	if rep.warmup, err = runEnvironments(ctx, cl, w, mgr, cfg, imgs, "warm", len(imgs), cfg.rate); err != nil {
		return rep, err
	}
	if rep.envs, err = runEnvironments(ctx, cl, w, mgr, cfg, imgs, "env", cfg.envs, cfg.rate); err != nil {
		return rep, err
	}
	// Latency at a rate the cluster sustains: the bulk phase above measures queueing at a
	// create rate it does not (docs/benchmarks.md).
	if rep.paced, err = runEnvironments(ctx, cl, w, mgr, cfg, imgs, "paced", cfg.pacedEnvs, cfg.pacedRate); err != nil {
		return rep, err
	}
	if rep.steady, mgr, err = steadyState(ctx, cl, mgr, cfg); err != nil {
		return rep, err
	}
	rep.restart, err = restartWithPreloaded(ctx, cl, w, mgr, cfg, imgs)
	return rep, err
}
