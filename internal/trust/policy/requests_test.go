package policy

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/trust"
)

// countingTransport records every request the verifier sends that a registry answered
// ("METHOD kind"): counts are deterministic where latency is not, and they are what a
// registry's rate limit sees. (For a plain-HTTP registry on loopback go-containerregistry
// also tries https in parallel with the first ping; that attempt fails its TLS handshake
// and never reaches the registry, so it is not counted.)
type countingTransport struct {
	mu       sync.Mutex
	requests []string
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		c.mu.Lock()
		c.requests = append(c.requests, req.Method+" "+requestKind(req.URL.Path))
		c.mu.Unlock()
	}
	return resp, err
}

// take returns the requests so far and forgets them.
func (c *countingTransport) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.requests
	c.requests = nil
	return out
}

func requestKind(path string) string {
	switch {
	case path == "/v2/":
		return "ping"
	case strings.HasSuffix(path, ".sig"):
		return "signature manifest"
	case strings.HasSuffix(path, ".att"):
		return "attestation manifest"
	case strings.Contains(path, "/blobs/"):
		return "blob"
	}
	return path
}

// TestVerificationRequestCounts pins the registry cost of verifying a digest: a key-signed
// digest costs 3 requests cold (ping, signature manifest, signature blob), none from the
// cache, and a required attestation 2 more (its manifest and blob: one ping serves every
// policy of an evaluation).
func TestVerificationRequestCounts(t *testing.T) {
	g := NewWithT(t)
	reg := registrytest.New(t)
	release := newSigner(t)
	glob := reg.Host + "/team/*"
	signed, attested := push(t, reg, "team/signed"), push(t, reg, "team/attested")
	release.sign(t, signed)
	release.sign(t, attested)
	release.attest(t, attested, trustedBuilder)

	counter := &countingTransport{}
	v := New(&StaticSource{Policies: pl(keyPolicy("release", glob, release.publicPEM))}, Options{Transport: counter})
	verify := func(v *Verifier, img string) {
		t.Helper()
		got, err := v.Verify(bg, trust.Request{Image: img})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got.Reason).To(Equal(trust.ReasonVerified), got.Message)
	}

	verify(v, signed)
	g.Expect(counter.take()).To(Equal([]string{"GET ping", "GET signature manifest", "GET blob"}))
	for range 10 {
		verify(v, signed)
	}
	g.Expect(counter.take()).To(BeEmpty())

	both := New(&StaticSource{Policies: pl(keyPolicy("release", glob, release.publicPEM),
		provenancePolicy("provenance", glob, release.publicPEM, trustedBuilder))}, Options{Transport: counter})
	verify(both, attested)
	got := counter.take()
	g.Expect(got).To(HaveLen(5), "%v", got)
	g.Expect(got).To(ConsistOf("GET ping", "GET signature manifest", "GET blob", "GET attestation manifest", "GET blob"))
	verify(both, attested)
	g.Expect(counter.take()).To(BeEmpty())
}
