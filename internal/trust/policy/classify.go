package policy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/registry"
)

// recorder is the registry transport of one evaluation. policy-controller's engine turns
// every authority error into a message string, so the type of a registry failure is lost
// by the time it returns; the transport sees it first. A 404 is normal (an image without
// signatures has no .sig tag) and the 401 of the /v2/ ping starts the auth handshake;
// everything else at 401, 403, 429 or 5xx, and every network error, means the registry,
// not the digest, decided the outcome. A failed ping counts only if no later ping to that
// host got an answer: go-containerregistry pings a loopback or insecure registry over
// HTTPS first and falls back to HTTP.
type recorder struct {
	base http.RoundTripper

	mu     sync.Mutex
	err    error
	ping   map[string]error
	denied bool
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	var failed error
	denied := false
	switch {
	case errors.As(err, new(*registry.LimitError)): // names the request already
		failed = err
	case err != nil:
		failed = fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), err)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		if req.URL.Path != "/v2/" {
			failed, denied = fmt.Errorf("%s %s: %s", req.Method, req.URL.Redacted(), resp.Status), true
		}
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		failed = fmt.Errorf("%s %s: %s", req.Method, req.URL.Redacted(), resp.Status)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case req.URL.Path == "/v2/" && failed != nil:
		if r.ping == nil {
			r.ping = map[string]error{}
		}
		r.ping[req.URL.Host] = failed
	case req.URL.Path == "/v2/":
		delete(r.ping, req.URL.Host)
	case failed != nil && r.err == nil:
		r.err = failed
	}
	r.denied = r.denied || denied
	if resp != nil && resp.Body != nil {
		resp.Body = &recordedBody{ReadCloser: resp.Body, r: r, req: req}
	}
	return resp, err
}

// recordedBody records a body that fails while being read (cut off at a size limit, not
// matching its digest, the connection dropped): the registry decided the outcome, and
// cosign would report it only as one more reason a signature did not verify.
type recordedBody struct {
	io.ReadCloser
	r   *recorder
	req *http.Request
}

func (b *recordedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.r.mu.Lock()
		var limit *registry.LimitError
		switch {
		case b.r.err != nil:
		case errors.As(err, &limit): // names the request already
			b.r.err = err
		default:
			b.r.err = fmt.Errorf("%s %s: %w", b.req.Method, b.req.URL.Redacted(), err)
		}
		b.r.mu.Unlock()
	}
	return n, err
}

// failure returns the first registry failure of the evaluation, if any.
func (r *recorder) failure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	for _, err := range r.ping {
		return err
	}
	return nil
}

func (r *recorder) unauthorized() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.denied
}

// failureReasons maps the messages of policy-controller's engine (which come from cosign's
// typed errors, flattened to strings) to stable reasons, most specific first: when several
// authorities fail differently, the reason names the one closest to passing.
var failureReasons = []struct {
	reason string
	match  func(msg string) bool
}{
	{trainenvv1.ReasonPolicyDenied, func(m string) bool {
		return strings.Contains(m, "disallowed by static policy") ||
			strings.Contains(m, "policy for ClusterImagePolicy") || // cue: "...cue policy for ClusterImagePolicy"
			strings.Contains(m, "policy for type ClusterImagePolicy") // rego
	}},
	{trainenvv1.ReasonAttestationPolicyFailed, func(m string) bool {
		return strings.Contains(m, "failed evaluating cue policy") || strings.Contains(m, "failed evaluating rego policy")
	}},
	{trainenvv1.ReasonSignerRevoked, func(m string) bool { return strings.Contains(m, notationRevoked) }},
	{trainenvv1.ReasonSignatureExpired, func(m string) bool { return strings.Contains(m, notationExpired) }},
	{trainenvv1.ReasonUntrustedSigner, func(m string) bool { return strings.Contains(m, "no matching signatures") }},
	{trainenvv1.ReasonAttestationMissing, func(m string) bool { return strings.Contains(m, "no matching attestations") }},
	{trainenvv1.ReasonNoSignature, func(m string) bool { return strings.Contains(m, "no signatures found") }},
}

// hints say what to do about each failure.
var hints = map[string]string{
	trainenvv1.ReasonNoSignature:             "sign this digest with a key or identity the policy trusts",
	trainenvv1.ReasonUntrustedSigner:         "it is signed, but not by a key or identity the policy trusts",
	trainenvv1.ReasonSignerRevoked:           "the certificate that signed it is revoked: sign it again with a valid certificate",
	trainenvv1.ReasonSignatureExpired:        "the signature or its signing certificate has expired: sign it again with a valid certificate",
	trainenvv1.ReasonAttestationMissing:      "attach the attestation the policy requires, signed by a trusted authority",
	trainenvv1.ReasonAttestationPolicyFailed: "the attestation's content does not satisfy the policy",
	trainenvv1.ReasonPolicyDenied:            "the policy rejects this image",
	trainenvv1.ReasonVerificationFailed:      "see the policy errors",
	// The vulnerability gate's messages say what to do themselves.
	trainenvv1.ReasonVulnerabilitiesFound:     "the policy's vulnerability gate refuses it",
	trainenvv1.ReasonVulnerabilityScanStale:   "the policy's vulnerability gate needs a newer scan",
	trainenvv1.ReasonVulnerabilityScanMissing: "the policy's vulnerability gate needs a verified scan",
}

func failureReason(msgs []string) string {
	for _, fr := range failureReasons {
		for _, m := range msgs {
			if fr.match(m) {
				return fr.reason
			}
		}
	}
	return trainenvv1.ReasonVerificationFailed
}

// networkMarkers catch failures of clients that do not go through the recorder: the
// transparency log and TUF clients, and registries reached with signaturePullSecrets
// (policy-controller replaces the remote options for those).
var networkMarkers = []string{"connection refused", "no such host", "i/o timeout", "TLS handshake timeout",
	"connection reset", "dial tcp", "context deadline exceeded", "503 Service Unavailable", "502 Bad Gateway",
	// go-containerregistry checks each blob against its digest as cosign reads it: content
	// that does not match means the registry (or something on the way) is broken, not that
	// the signer is untrusted.
	"error verifying sha256 checksum",
	// ... and a manifest (a sigstore bundle's) whose bytes are not the digest it was asked by.
	"does not match requested digest",
	// A Notation signer's CRL distribution point or OCSP responder did not answer: its
	// revocation status is unknown, which fails the check but says nothing about the digest.
	"revocation status is unknown", "unable to check revocation status"}

func networkFailure(msgs []string) error {
	for _, m := range msgs {
		for _, marker := range networkMarkers {
			if strings.Contains(m, marker) {
				return fmt.Errorf("%s", m)
			}
		}
	}
	return nil
}
