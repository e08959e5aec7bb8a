// Package metrics holds trainenv's Prometheus metrics, registered on controller-runtime's
// registry so that the manager's metrics server (secure: authenticated and authorized by
// the API server) serves them beside controller-runtime's own.
//
// Counters and histograms are updated where things happen (verification, registry
// requests, compatibility decisions, preflights, first Ready). Gauges that describe the
// cluster (environments by phase, GPUs, node agents) are computed at scrape time from the
// informer cache by State, so they cannot drift from what the API server holds.
//
// Names follow Prometheus conventions (trainenv_ prefix, base units, _total counters);
// config/prometheus/README.md lists them with their labels, and a test keeps that table
// and this package equal.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Label values of Verifications' result.
const (
	ResultVerified = "verified" // the verdict lets the digest run
	ResultFailed   = "failed"   // a policy said no
	ResultError    = "error"    // the check could not run (retried)
)

var (
	// Verifications counts trust verdicts asked for by the reconciler.
	Verifications = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trainenv_verifications_total",
		Help: "Image verifications by result (verified, failed, error) and Verified condition reason.",
	}, []string{"result", "reason"})

	// VerificationDuration times the evaluations that reached the registry (cache misses).
	VerificationDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "trainenv_verification_duration_seconds",
		Help:    "Time to evaluate the matching ClusterImagePolicies for one digest (cache misses only), by result.",
		Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120},
	}, []string{"result"})

	// VerificationCacheLookups counts the verifier's verdict cache lookups.
	VerificationCacheLookups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trainenv_verification_cache_lookups_total",
		Help: "Verdict cache lookups of the trust verifier, by result (hit, miss).",
	}, []string{"result"})

	// RegistryRequests counts HTTP requests to registries.
	RegistryRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trainenv_registry_requests_total",
		Help: "HTTP requests to image registries by operation (resolve, verify) and outcome " +
			"(ok, not_found, unauthorized, throttled, client_error, server_error, network_error).",
	}, []string{"operation", "outcome"})

	// RegistryRequestDuration times registry requests.
	RegistryRequestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "trainenv_registry_request_duration_seconds",
		Help:    "Duration of HTTP requests to image registries (until the response headers), by operation.",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
	}, []string{"operation"})

	// RegistryRetries counts requests repeated by go-containerregistry's retry transport.
	RegistryRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trainenv_registry_request_retries_total",
		Help: "Registry requests sent again after a throttled (429), failed (5xx) or broken attempt, by operation.",
	}, []string{"operation"})

	// CompatibilityDecisions counts the compatibility check's verdicts.
	CompatibilityDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trainenv_compatibility_decisions_total",
		Help: "GPU node compatibility decisions by Compatible condition reason.",
	}, []string{"reason"})

	// TimeToReady is observed once per environment, when Ready first turns True.
	TimeToReady = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "trainenv_environment_time_to_ready_seconds",
		Help:    "Time from a TrainingEnvironment's creation to its first Ready=True (running).",
		Buckets: []float64{1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600},
	})

	// Preflights counts GPU preflight results seen in environments' pods.
	Preflights = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trainenv_preflights_total",
		Help: "GPU preflight results recorded from environments' pods, by result (passed, failed).",
	}, []string{"result"})
)

// collectors are the event metrics above, registered once with controller-runtime's registry.
var collectors = []prometheus.Collector{
	Verifications, VerificationDuration, VerificationCacheLookups,
	RegistryRequests, RegistryRequestDuration, RegistryRetries,
	CompatibilityDecisions, TimeToReady, Preflights,
}

func init() {
	ctrlmetrics.Registry.MustRegister(collectors...)
}

// Result is the result label of a verdict: ResultError when the check could not run,
// ResultVerified when the digest may run, else ResultFailed.
func Result(allowed bool, err error) string {
	switch {
	case err != nil:
		return ResultError
	case allowed:
		return ResultVerified
	default:
		return ResultFailed
	}
}
