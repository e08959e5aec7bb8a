// Command manager runs the trainenv controller manager.
package main

import (
	"flag"
	"os"
	"time"

	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/controller"
	"github.com/trainenv/trainenv/internal/registry"
	"github.com/trainenv/trainenv/internal/trust/policy"
	"github.com/trainenv/trainenv/internal/workload"
)

func main() {
	var (
		metricsAddr, probeAddr string
		leaderElect            bool
		concurrency            int
		digestCacheSize        int
		allowUnmatched         bool
		toolsImage             string
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "Address of the Prometheus metrics endpoint; 0 disables it.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address of the health and readiness probes.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader, so that several replicas can run with one active.")
	flag.IntVar(&concurrency, "max-concurrent-reconciles", 8, "TrainingEnvironments reconciled in parallel.")
	flag.IntVar(&digestCacheSize, "digest-cache-size", 4096, "Resolved image digests kept in memory (manifests are immutable).")
	flag.BoolVar(&allowUnmatched, "allow-unmatched-images", false,
		"DEVELOPMENT ONLY: let images that no ClusterImagePolicy covers run, shown as Verified=Unknown (UnmatchedAllowed). Off: such images never run.")
	flag.StringVar(&toolsImage, "tools-image", envOr("TRAINENV_TOOLS_IMAGE", "trainenv/manager:dev"),
		"The operator's own image (pin it by digest), which carries the in-pod entrypoint and preflight. Default: $TRAINENV_TOOLS_IMAGE.")
	flag.DurationVar(&registryTimeout, "registry-timeout", registry.DefaultTimeout,
		"Time budget of one image resolution, and of one signature verification, all registry requests included: a registry that stops answering fails the pass (retried with backoff) instead of holding a worker.")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	setupLog := ctrl.Log.WithName("setup")

	if allowUnmatched {
		setupLog.Info("WARNING: --allow-unmatched-images is on: images no ClusterImagePolicy covers will run unverified")
	}
	if err := run(metricsAddr, probeAddr, leaderElect, concurrency, digestCacheSize, allowUnmatched, toolsImage); err != nil {
		setupLog.Error(err, "manager exited")
		os.Exit(1)
	}
}

// registryTimeout is --registry-timeout.
var registryTimeout time.Duration

func run(metricsAddr, probeAddr string, leaderElect bool, concurrency, digestCacheSize int, allowUnmatched bool, toolsImage string) error {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := trainenvv1.AddToScheme(scheme); err != nil {
		return err
	}
	// ClusterImagePolicy and TrustRoot, read at their storage version (v1alpha1) so that no
	// conversion webhook is needed.
	if err := pcv1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress: probeAddr,
		LeaderElection:         leaderElect,
		LeaderElectionID:       "trainenv-manager.trainenv.io",
		Cache:                  cacheOptions(),
	})
	if err != nil {
		return err
	}
	r := &controller.TrainingEnvironmentReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("trainenv"),
		Resolver:  resolver(digestCacheSize),
		Verifier: policy.New(&policy.APISource{Policies: mgr.GetClient(), Refs: mgr.GetAPIReader()},
			policy.Options{AllowUnmatched: allowUnmatched, Timeout: registryTimeout}),
		Clock:      clock.RealClock{},
		ToolsImage: toolsImage,
	}
	if err := r.SetupWithManager(mgr, crcontroller.Options{MaxConcurrentReconciles: concurrency}); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	return mgr.Start(ctrl.SetupSignalHandler())
}

// cacheOptions caches only the workload objects trainenv made (by label), not every pod,
// StatefulSet, Service, claim and NetworkPolicy of the cluster. Secrets are never cached
// (see internal/controller/access.go).
func cacheOptions() cache.Options {
	req, err := labels.NewRequirement(workload.LabelEnvironment, selection.Exists, nil)
	if err != nil {
		panic(err)
	}
	owned := cache.ByObject{Label: labels.NewSelector().Add(*req)}
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Pod{}:                   owned,
		&appsv1.StatefulSet{}:           owned,
		&corev1.Service{}:               owned,
		&corev1.PersistentVolumeClaim{}: owned,
		&networkingv1.NetworkPolicy{}:   owned,
	}}
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func resolver(cacheSize int) *registry.Resolver {
	r := registry.NewResolver(nil, cacheSize)
	r.Timeout = registryTimeout
	return r
}
