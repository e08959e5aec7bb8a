package metrics

import (
	"crypto/tls"

	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// The secure metrics endpoint asks the API server who a scraper is (TokenReview) and
// whether it may get /metrics (SubjectAccessReview), as kubebuilder scaffolds it.
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// ServerConfig is how the manager serves /metrics.
type ServerConfig struct {
	// BindAddress is host:port, or "0" to serve nothing.
	BindAddress string
	// Secure serves HTTPS and lets only callers the API server authenticates, and
	// authorizes for get on the non-resource URL /metrics, read the metrics (bind the
	// trainenv-metrics-reader ClusterRole to Prometheus' service account). Off serves plain
	// HTTP to anyone: for local development only.
	Secure bool
	// CertDir holds tls.crt and tls.key (e.g. a cert-manager Secret), reloaded when they
	// change. Without them the server makes a self-signed certificate at start.
	CertDir string
	// EnableHTTP2 keeps HTTP/2 on. It is off by default, as in kubebuilder's scaffold:
	// HTTP/2 stream cancellation and rapid reset (CVE-2023-44487, CVE-2023-39325) are
	// cheaper to avoid than to mitigate for an endpoint scraped twice a minute.
	EnableHTTP2 bool
}

// ServerOptions are controller-runtime's metrics server options for c.
func ServerOptions(c ServerConfig) metricsserver.Options {
	opts := metricsserver.Options{BindAddress: c.BindAddress, SecureServing: c.Secure}
	if !c.Secure {
		return opts
	}
	opts.FilterProvider = filters.WithAuthenticationAndAuthorization
	opts.CertDir = c.CertDir
	if !c.EnableHTTP2 {
		opts.TLSOpts = append(opts.TLSOpts, func(cfg *tls.Config) { cfg.NextProtos = []string{"http/1.1"} })
	}
	return opts
}
