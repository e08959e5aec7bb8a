package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Limits bound what a registry can make trainenv read and how long it can make it wait, so
// that a broken or hostile registry costs a bounded amount of memory and time per request
// and cannot pin a worker. go-containerregistry alone reads manifests up to 100 MiB and a
// blob up to the size its manifest declares (the image config: any size); cosign reads a
// signature layer up to 128 MiB and up to 1,000 of them per image (CVE-2024-29902,
// CVE-2023-46737). trainenv never needs anything near that.
type Limits struct {
	// MaxManifestBytes caps a manifest or index (default 4 MiB, the limit the CNCF
	// distribution registry puts on manifests it accepts).
	MaxManifestBytes int64
	// MaxBlobBytes caps any other response: image configs, signature payloads,
	// attestations (default 16 MiB).
	MaxBlobBytes int64
	// MaxAttachments caps the signatures or attestations attached to one digest, as
	// layers of cosign's sha256-<digest>.sig / .att / .sbom manifests, and the referrers
	// of one digest (the OCI referrers API's index, or its sha256-<digest> tag fallback on
	// registries without it), where sigstore bundles are attached (default 100).
	MaxAttachments int
}

// Default limits and time budget.
const (
	DefaultMaxManifestBytes = 4 << 20
	DefaultMaxBlobBytes     = 16 << 20
	DefaultMaxAttachments   = 100
	// DefaultTimeout bounds one resolution (every registry request it makes).
	DefaultTimeout = 10 * time.Second
)

func (l Limits) withDefaults() Limits {
	if l.MaxManifestBytes <= 0 {
		l.MaxManifestBytes = DefaultMaxManifestBytes
	}
	if l.MaxBlobBytes <= 0 {
		l.MaxBlobBytes = DefaultMaxBlobBytes
	}
	if l.MaxAttachments <= 0 {
		l.MaxAttachments = DefaultMaxAttachments
	}
	return l
}

// LimitError is a registry response over a limit.
type LimitError struct{ msg string }

func (e *LimitError) Error() string { return e.msg }

// LimitTransport wraps base (remote.DefaultTransport if nil) so that every response body
// is cut off at the limits, with an error naming the limit, and cosign attachment
// manifests with too many layers are refused before any layer is fetched.
func LimitTransport(base http.RoundTripper, l Limits) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &limitTransport{base: base, l: l.withDefaults()}
}

type limitTransport struct {
	base http.RoundTripper
	l    Limits
}

// attachmentTag matches cosign's tags for what it attaches to a digest.
var attachmentTag = regexp.MustCompile(`/manifests/sha256-[0-9a-f]{64}\.(sig|att|sbom)$`)

// referrersIndex matches the OCI referrers of a digest: the referrers API, and the
// sha256-<hex> tag that registries without it hold the same index under.
var referrersIndex = regexp.MustCompile(`/(referrers/sha256:|manifests/sha256-)[0-9a-f]{64}$`)

// maxRedirects is net/http's own default, which go-containerregistry's redirect check
// (same host always allowed) replaces with none at all: a registry redirecting to itself
// would otherwise be followed forever.
const maxRedirects = 10

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if n := redirects(req); n > maxRedirects {
		return nil, &LimitError{fmt.Sprintf("%s %s: stopped after %d redirects", req.Method, req.URL.Redacted(), maxRedirects)}
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil || req.Method == http.MethodHead {
		return resp, err
	}
	what, limit := "blob", t.l.MaxBlobBytes
	if strings.Contains(req.URL.Path, "/manifests/") || strings.Contains(req.URL.Path, "/referrers/") {
		what, limit = "manifest", t.l.MaxManifestBytes
	}
	if resp.ContentLength > limit {
		resp.Body.Close()
		return nil, &LimitError{fmt.Sprintf("%s %s: the registry sent a %s of %d bytes, over trainenv's limit of %d",
			req.Method, req.URL.Redacted(), what, resp.ContentLength, limit)}
	}
	resp.Body = &limitedBody{rc: resp.Body, left: limit, what: what, max: limit, url: req.URL.Redacted()}
	if resp.StatusCode == http.StatusOK && (attachmentTag.MatchString(req.URL.Path) || referrersIndex.MatchString(req.URL.Path)) {
		return t.countAttachments(req, resp)
	}
	return resp, nil
}

// redirects counts the redirects that led to req: the client links each redirected
// request to the response that caused it.
func redirects(req *http.Request) int {
	n := 0
	for r := req.Response; r != nil && r.Request != nil; r = r.Request.Response {
		n++
	}
	return n
}

// countAttachments reads a cosign attachment manifest or a referrers index (already capped
// in size) and refuses it when it lists more layers or manifests than allowed; otherwise it
// is passed on intact.
func (t *limitTransport) countAttachments(req *http.Request, resp *http.Response) (*http.Response, error) {
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var m struct {
		Layers    []json.RawMessage `json:"layers"`
		Manifests []json.RawMessage `json:"manifests"`
	}
	if json.Unmarshal(raw, &m) == nil {
		n, kind := len(m.Layers), "referrers"
		if sub := attachmentTag.FindStringSubmatch(req.URL.Path); sub != nil {
			kind = map[string]string{"sig": "signatures", "att": "attestations", "sbom": "SBOMs"}[sub[1]]
		} else {
			n = len(m.Manifests)
		}
		if n > t.l.MaxAttachments {
			return nil, &LimitError{fmt.Sprintf("%s %s: %d %s attached to one digest, over trainenv's limit of %d; "+
				"remove stale ones (cosign clean) or ask the platform team to raise the limit",
				req.Method, req.URL.Redacted(), n, kind, t.l.MaxAttachments)}
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	return resp, nil
}

// limitedBody fails a read past max bytes (a response without Content-Length, or one
// longer than it said).
type limitedBody struct {
	rc        io.ReadCloser
	left, max int64
	what, url string
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more than allowed tells a body at the limit from one over it.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n == 0 {
			return 0, err
		}
		return 0, &LimitError{fmt.Sprintf("GET %s: the registry sent a %s of more than %d bytes, over trainenv's limit", b.url, b.what, b.max)}
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
