package registrytest

import (
	"net/http"
	"regexp"
	"strings"
	"sync"
)

// CountingTransport records every request a registry answered, as "METHOD kind" (see
// RequestKind): counts are deterministic where latency is not, and they are what a
// registry's rate limit sees. For a plain-HTTP registry on loopback go-containerregistry
// also tries https in parallel with the first ping; that attempt fails its TLS handshake
// and never reaches the registry, so it is not counted.
type CountingTransport struct {
	mu       sync.Mutex
	requests []string
}

// RoundTrip sends req with http.DefaultTransport and records it once answered.
func (c *CountingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		c.mu.Lock()
		c.requests = append(c.requests, req.Method+" "+RequestKind(req.URL.Path))
		c.mu.Unlock()
	}
	return resp, err
}

// Take returns the requests so far and forgets them.
func (c *CountingTransport) Take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.requests
	c.requests = nil
	return out
}

// RequestKind names what a registry path asks for: ping, signature or attestation
// manifest (cosign's sha256-<hex>.sig/.att tags), referrers (the OCI referrers API) or
// referrers tag (its sha256-<hex> fallback), manifest by digest or by tag, blob; any other
// path as itself.
func RequestKind(path string) string {
	switch {
	case path == "/v2/":
		return "ping"
	case strings.Contains(path, "/referrers/"):
		return "referrers"
	case referrersTag.MatchString(path):
		return "referrers tag"
	case strings.HasSuffix(path, ".sig"):
		return "signature manifest"
	case strings.HasSuffix(path, ".att"):
		return "attestation manifest"
	case strings.Contains(path, "/manifests/sha256:"):
		return "manifest by digest"
	case strings.Contains(path, "/manifests/"):
		return "manifest by tag"
	case strings.Contains(path, "/blobs/"):
		return "blob"
	}
	return path
}

var referrersTag = regexp.MustCompile(`/manifests/sha256-[0-9a-f]{64}$`)
