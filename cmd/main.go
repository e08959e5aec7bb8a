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
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/controller"
	"github.com/trainenv/trainenv/internal/kyvernosync"
	"github.com/trainenv/trainenv/internal/metrics"
	"github.com/trainenv/trainenv/internal/registry"
	"github.com/trainenv/trainenv/internal/trust/policy"
	"github.com/trainenv/trainenv/internal/workload"
)

// options are the manager's command-line settings.
type options struct {
	metrics         metrics.ServerConfig
	probeAddr       string
	leaderElect     bool
	concurrency     int
	digestCacheSize int
	allowUnmatched  bool
	toolsImage      string
	kyvernoPolicy   bool
	pprofAddr       string
	syncPeriod      time.Duration
	registryTimeout time.Duration
	apiQPS          float64
	apiBurst        int
	notationCM      string
	notationNS      string
}

func (o *options) bindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.metrics.BindAddress, "metrics-bind-address", ":8443", "Address of the Prometheus metrics endpoint (:8443 for HTTPS, :8080 for HTTP); 0 disables it.")
	fs.BoolVar(&o.metrics.Secure, "metrics-secure", true,
		"Serve metrics over HTTPS to callers the API server authenticates and authorizes for get on /metrics (the trainenv-metrics-reader ClusterRole). --metrics-secure=false serves plain HTTP to anyone: development only.")
	fs.StringVar(&o.metrics.CertDir, "metrics-cert-dir", "", "Directory with tls.crt and tls.key for the metrics endpoint, reloaded on change; empty: a self-signed certificate.")
	fs.BoolVar(&o.metrics.EnableHTTP2, "enable-http2", false, "Serve metrics over HTTP/2 too (off: HTTP/2 rapid-reset and stream-cancellation CVEs).")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of the health and readiness probes.")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "Elect a leader, so that several replicas can run with one active.")
	fs.IntVar(&o.concurrency, "max-concurrent-reconciles", 8,
		"TrainingEnvironments reconciled in parallel. A pass mostly waits on the API server and the registry, not the CPU.")
	fs.IntVar(&o.digestCacheSize, "digest-cache-size", 4096, "Resolved image digests kept in memory (manifests are immutable).")
	fs.BoolVar(&o.allowUnmatched, "allow-unmatched-images", false,
		"DEVELOPMENT ONLY: let images that no ClusterImagePolicy covers run, shown as Verified=Unknown (UnmatchedAllowed). Off: such images never run.")
	fs.StringVar(&o.toolsImage, "tools-image", envOr("TRAINENV_TOOLS_IMAGE", "trainenv/manager:dev"),
		"The operator's own image (pin it by digest), which carries the in-pod entrypoint and preflight. Default: $TRAINENV_TOOLS_IMAGE.")
	fs.BoolVar(&o.kyvernoPolicy, "kyverno-policy", false,
		"Generate a Kyverno ImageValidatingPolicy per ClusterImagePolicy, so that Kyverno admits trainenv's pods only with verified images (needs the RBAC of config/kyverno; waits for Kyverno's CRD).")
	fs.StringVar(&o.pprofAddr, "pprof-bind-address", "", "Address of the pprof endpoint (e.g. 127.0.0.1:8082), for profiling; empty disables it.")
	fs.Float64Var(&o.apiQPS, "kube-api-qps", 0,
		"Client-side limit of API requests per second; 0 keeps controller-runtime's default (no client-side limit: the API server's priority and fairness applies).")
	fs.IntVar(&o.apiBurst, "kube-api-burst", 0, "Burst of --kube-api-qps; 0 keeps the default.")
	fs.DurationVar(&o.syncPeriod, "sync-period", 10*time.Hour,
		"How often every cached object is handed to the reconciler again, changed or not (controller-runtime's SyncPeriod).")
	fs.StringVar(&o.notationCM, "notation-configmap", "trainenv-notation",
		"ConfigMap (in --notation-namespace) with the Notation trust policy (trustpolicy.json) and trust stores (TYPE.NAME.pem); absent: Notation signatures are not verified. Empty disables it.")
	fs.StringVar(&o.notationNS, "notation-namespace", envOr("POD_NAMESPACE", "trainenv-system"),
		"Namespace of --notation-configmap (default: the manager's own, $POD_NAMESPACE).")
	fs.DurationVar(&o.registryTimeout, "registry-timeout", registry.DefaultTimeout,
		"Time budget of one image resolution, and of one signature verification, all registry requests included: a registry that stops answering fails the pass (retried with backoff) instead of holding a worker.")
}

func main() {
	var o options
	o.bindFlags(flag.CommandLine)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	setupLog := ctrl.Log.WithName("setup")
	setMemoryLimit(setupLog)

	if o.allowUnmatched {
		setupLog.Info("WARNING: --allow-unmatched-images is on: images no ClusterImagePolicy covers will run unverified")
	}
	if !o.metrics.Secure {
		setupLog.Info("WARNING: --metrics-secure=false: metrics are served over plain HTTP to anyone who reaches the port")
	}
	if err := run(o); err != nil {
		setupLog.Error(err, "manager exited")
		os.Exit(1)
	}
}

func run(o options) error {
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
	cfg := ctrl.GetConfigOrDie()
	if o.apiQPS != 0 {
		cfg.QPS = float32(o.apiQPS)
	}
	if o.apiBurst != 0 {
		cfg.Burst = o.apiBurst
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metrics.ServerOptions(o.metrics),
		HealthProbeBindAddress: o.probeAddr,
		PprofBindAddress:       o.pprofAddr,
		LeaderElection:         o.leaderElect,
		LeaderElectionID:       "trainenv-manager.trainenv.io",
		Cache:                  cacheOptions(o.syncPeriod),
	})
	if err != nil {
		return err
	}
	// The audit trail is read from the pods' logs (internal/controller/accesslog.go); the
	// manager's HTTP client shares its rate limits with every other request.
	kube, err := kubernetes.NewForConfigAndClient(mgr.GetConfig(), mgr.GetHTTPClient())
	if err != nil {
		return err
	}
	r := &controller.TrainingEnvironmentReconciler{
		AccessLogs: controller.PodLogs{Client: kube},
		Client:     mgr.GetClient(),
		APIReader:  mgr.GetAPIReader(),
		Recorder:   mgr.GetEventRecorder("trainenv"),
		Resolver:   resolver(o.digestCacheSize, o.registryTimeout),
		Verifier: policy.New(&policy.APISource{Policies: mgr.GetClient(), Refs: mgr.GetAPIReader()},
			policy.Options{AllowUnmatched: o.allowUnmatched, Timeout: o.registryTimeout, Notation: notationSource(o, mgr.GetAPIReader())}),
		Clock:      clock.RealClock{},
		ToolsImage: o.toolsImage,
	}
	if err := r.SetupWithManager(mgr, crcontroller.Options{MaxConcurrentReconciles: o.concurrency}); err != nil {
		return err
	}
	// Every replica serves the cluster-state gauges from its own cache (alerts take max).
	if _, err := metrics.RegisterState(&metrics.State{Reader: mgr.GetCache(), Log: ctrl.Log.WithName("metrics")}); err != nil {
		return err
	}
	if o.kyvernoPolicy {
		src := &policy.APISource{Policies: mgr.GetClient(), Refs: mgr.GetAPIReader()}
		if err := kyvernosync.Setup(mgr, kyvernosync.Options{Source: src}); err != nil {
			return err
		}
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
func cacheOptions(syncPeriod time.Duration) cache.Options {
	req, err := labels.NewRequirement(workload.LabelEnvironment, selection.Exists, nil)
	if err != nil {
		panic(err)
	}
	owned := cache.ByObject{Label: labels.NewSelector().Add(*req)}
	// Pods and StatefulSets keep only what the reconciler reads (controller.TransformPod):
	// their pod specs were most of the cache at 5,000 environments. Each strips
	// managedFields itself (a type's Transform replaces DefaultTransform).
	pods, statefulSets := owned, owned
	pods.Transform, statefulSets.Transform = controller.TransformPod, controller.TransformStatefulSet
	return cache.Options{
		SyncPeriod: &syncPeriod,
		// trainenv never reads managedFields; they were a third of the cache's memory at
		// 5,000 environments (docs/benchmarks.md).
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}:                   pods,
			&appsv1.StatefulSet{}:           statefulSets,
			&corev1.PersistentVolumeClaim{}: owned,
			&networkingv1.NetworkPolicy{}:   owned,
		}}
}

// notationSource reads the Notation trust ConfigMap directly (one GET at most every 30 s
// while verifications run), so that the manager needs get on that one object only.
func notationSource(o options, r client.Reader) policy.NotationSource {
	if o.notationCM == "" {
		return nil
	}
	return &policy.ConfigMapNotationSource{Reader: r, Namespace: o.notationNS, Name: o.notationCM}
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func resolver(cacheSize int, timeout time.Duration) *registry.Resolver {
	r := registry.NewResolver(nil, cacheSize)
	r.Timeout = timeout
	return r
}
