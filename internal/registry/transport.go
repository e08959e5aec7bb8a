package registry

import (
	"net/http"
	"runtime"
	"sync"
	"time"
	"weak"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/trainenv/trainenv/internal/metrics"
)

// Operations, the operation label of the registry metrics.
const (
	OperationResolve = "resolve" // tag lookups, manifests and configs (Resolver)
	OperationVerify  = "verify"  // signatures and attestations (the trust verifier)
)

// Outcomes of a registry request, the outcome label of trainenv_registry_requests_total.
const (
	OutcomeOK           = "ok"
	OutcomeNotFound     = "not_found"
	OutcomeUnauthorized = "unauthorized" // 401 or 403; the 401 of the /v2/ ping starts every token handshake
	OutcomeThrottled    = "throttled"    // 429: the registry's rate limit
	OutcomeClientError  = "client_error"
	OutcomeServerError  = "server_error"
	OutcomeNetworkError = "network_error"
)

// Instrument wraps base (remote.DefaultTransport if nil) so that every request to a
// registry is counted by outcome and timed, for operation. Give it to go-containerregistry
// as the transport: its retry transport then sits above this one and sends each attempt
// through it, so a repeated request, a retry, is counted as one too. Registry throttling,
// not CPU, limits how fast environments can be verified at scale; this shows it.
func Instrument(base http.RoundTripper, operation string) http.RoundTripper {
	if base == nil {
		base = remote.DefaultTransport
	}
	if c, ok := base.(*countingTransport); ok && c.operation == operation {
		return base
	}
	return &countingTransport{base: base, operation: operation}
}

type countingTransport struct {
	base      http.RoundTripper
	operation string
	// attempted holds the requests sent at least once, weakly: go-containerregistry's
	// retry transport sends the same *http.Request again, and an entry goes away with
	// its request.
	attempted sync.Map // weak.Pointer[http.Request] -> struct{}
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if c.repeated(req) {
		metrics.RegistryRetries.WithLabelValues(c.operation).Inc()
	}
	start := time.Now()
	resp, err := c.base.RoundTrip(req)
	metrics.RegistryRequestDuration.WithLabelValues(c.operation).Observe(time.Since(start).Seconds())
	metrics.RegistryRequests.WithLabelValues(c.operation, outcome(resp, err)).Inc()
	return resp, err
}

// repeated tells whether req was sent through this transport before.
func (c *countingTransport) repeated(req *http.Request) bool {
	key := weak.Make(req)
	if _, loaded := c.attempted.LoadOrStore(key, struct{}{}); loaded {
		return true
	}
	runtime.AddCleanup(req, func(k weak.Pointer[http.Request]) { c.attempted.Delete(k) }, key)
	return false
}

func outcome(resp *http.Response, err error) string {
	switch {
	case err != nil:
		return OutcomeNetworkError
	case resp.StatusCode < 400:
		return OutcomeOK
	case resp.StatusCode == http.StatusUnauthorized, resp.StatusCode == http.StatusForbidden:
		return OutcomeUnauthorized
	case resp.StatusCode == http.StatusNotFound:
		return OutcomeNotFound
	case resp.StatusCode == http.StatusTooManyRequests:
		return OutcomeThrottled
	case resp.StatusCode < 500:
		return OutcomeClientError
	default:
		return OutcomeServerError
	}
}
