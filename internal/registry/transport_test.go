package registry_test

import (
	"testing"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/trainenv/trainenv/internal/metrics"
	"github.com/trainenv/trainenv/internal/registry"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
)

var outcomes = []string{registry.OutcomeOK, registry.OutcomeNotFound, registry.OutcomeUnauthorized,
	registry.OutcomeThrottled, registry.OutcomeClientError, registry.OutcomeServerError, registry.OutcomeNetworkError}

// counts are the resolve operation's registry metrics at one moment.
type counts struct {
	byOutcome map[string]float64
	total     float64
	retries   float64
	timed     uint64
}

func resolveCounts(t *testing.T) counts {
	t.Helper()
	c := counts{byOutcome: map[string]float64{}}
	for _, o := range outcomes {
		v := testutil.ToFloat64(metrics.RegistryRequests.WithLabelValues(registry.OperationResolve, o))
		c.byOutcome[o] = v
		c.total += v
	}
	c.retries = testutil.ToFloat64(metrics.RegistryRetries.WithLabelValues(registry.OperationResolve))
	ch := make(chan prometheus.Metric, 8)
	metrics.RegistryRequestDuration.WithLabelValues(registry.OperationResolve).(prometheus.Histogram).Collect(ch)
	close(ch)
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		c.timed = d.GetHistogram().GetSampleCount()
	}
	return c
}

func (c counts) since(before counts) counts {
	d := counts{byOutcome: map[string]float64{}, total: c.total - before.total, retries: c.retries - before.retries, timed: c.timed - before.timed}
	for o, v := range c.byOutcome {
		if v != before.byOutcome[o] {
			d.byOutcome[o] = v - before.byOutcome[o]
		}
	}
	return d
}

// Every request the registry served is counted once, by outcome, and timed; a 429 is
// "throttled" and go-containerregistry's retry of it counts as a retry.
func TestRegistryRequestsCountedWithThrottlingAndRetries(t *testing.T) {
	g := NewWithT(t)
	reg := registrytest.New(t)
	digest := reg.Push("team/pytorch", "2.4", registrytest.Image(t))
	reg.Requests()
	r := registry.NewResolver(nil, 16)

	before := resolveCounts(t)
	reg.ThrottleNext(1)
	res, err := resolve(reg, r, reg.Host+"/team/pytorch:2.4", "linux/amd64")
	g.Expect(err).NotTo(HaveOccurred(), "the retry gets past the rate limit")
	g.Expect(res.Digest).To(Equal(digest))
	served := reg.Requests()
	d := resolveCounts(t).since(before)
	// go-containerregistry pings a loopback registry over HTTPS first: this plain-HTTP one
	// breaks that handshake, a network error the registry never sees as a request.
	g.Expect(d.byOutcome[registry.OutcomeNetworkError]).To(Equal(1.0), "the HTTPS ping")
	g.Expect(d.total-1).To(BeNumerically("==", len(served)), "one count per request the registry saw: %v", served)
	g.Expect(d.timed).To(BeNumerically("==", d.total))
	g.Expect(d.byOutcome).To(HaveKeyWithValue(registry.OutcomeThrottled, 1.0))
	g.Expect(d.retries).To(Equal(1.0), "the throttled request was sent again")
	g.Expect(d.byOutcome[registry.OutcomeOK]).To(BeNumerically(">=", 3), "ping, HEAD, manifest, config")

	// A missing tag is not_found; nothing is retried.
	before = resolveCounts(t)
	_, err = resolve(reg, r, reg.Host+"/team/pytorch:missing", "linux/amd64")
	g.Expect(err).To(HaveOccurred())
	d = resolveCounts(t).since(before)
	g.Expect(d.byOutcome).To(HaveKeyWithValue(registry.OutcomeNotFound, 1.0))
	g.Expect(d.retries).To(BeZero())

	// A registry that is down answers 503 to every attempt: each attempt is a server error
	// and every attempt after the first a retry.
	reg.SetDown(true)
	reg.Requests()
	before = resolveCounts(t)
	_, err = resolve(reg, r, reg.Host+"/team/pytorch:2.4", "linux/amd64")
	g.Expect(err).To(HaveOccurred())
	d = resolveCounts(t).since(before)
	g.Expect(d.byOutcome[registry.OutcomeServerError]).To(BeNumerically(">=", 2))
	g.Expect(d.retries).To(BeNumerically(">=", 1))
	g.Expect(d.total - d.byOutcome[registry.OutcomeNetworkError]).To(BeNumerically("==", len(reg.Requests())))
}

// Instrument does not wrap its own transport twice for one operation.
func TestInstrumentIdempotent(t *testing.T) {
	g := NewWithT(t)
	once := registry.Instrument(nil, registry.OperationVerify)
	g.Expect(registry.Instrument(once, registry.OperationVerify)).To(BeIdenticalTo(once))
	g.Expect(registry.Instrument(once, registry.OperationResolve)).NotTo(BeIdenticalTo(once))
}
