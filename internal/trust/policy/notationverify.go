package policy

import (
	"context"
	"fmt"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/notaryproject/notation-core-go/signature/cose"
	"github.com/notaryproject/notation-core-go/signature/jws"
	"github.com/notaryproject/notation-go"
	"github.com/notaryproject/notation-go/verifier/trustpolicy"
	godigest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/trainenv/trainenv/internal/trust"
)

// Verifying Notation signatures of one digest, with notation-go's verifier (trust policy,
// trust store, integrity, authenticity, trusted identities, expiry, authentic timestamp,
// revocation) over trainenv's own registry access: the referrers come from the
// evaluation's referrers lookup (the OCI referrers API or the sha256-<hex> tag fallback of
// distribution 2.8), shared with the sigstore bundles, and every request goes through the
// evaluation's transport (size and count caps, the time budget, request metrics, registry
// failures recorded as transient).
//
// notation.Verify runs the same loop (list, fetch, verify until one passes) but returns
// only the joined text of the failures; this loop keeps each signature's outcome, so that
// a revoked or expired signer is told apart from an untrusted one.

// notationResult is the outcome of the Notation statement for one digest.
type notationResult struct {
	passed *trust.AuthorityResult
	fails  []string
}

// Phrases the reasons are classified from (see failureReasons).
const (
	notationRevoked = "notation: signer revoked"
	notationExpired = "notation: signature expired"
)

func (e *evaluation) notation(ctx context.Context, nt *notationTrust, st *trustpolicy.TrustPolicy) notationResult {
	fail := func(format string, args ...any) notationResult {
		return notationResult{fails: []string{fmt.Sprintf(format, args...)}}
	}
	// notation compares the signed descriptor (media type, digest, size) with the
	// artifact's, so the manifest's descriptor is needed: one HEAD.
	desc, err := remote.Head(e.ref, e.remote...)
	if err != nil {
		return fail("reading the manifest descriptor of %s: %v", e.ref, err)
	}
	idx, err := e.bundles.index(ctx, e.ref)
	if err != nil {
		return fail("%v", err)
	}
	var sigs []v1.Descriptor
	for _, d := range idx.Manifests {
		if d.ArtifactType == notationArtifactType {
			sigs = append(sigs, d)
		}
	}
	if len(sigs) == 0 {
		return fail("no signatures found: %v for %s (Notation trust policy statement %s)", errNoNotationSignature, e.ref.Name(), st.Name)
	}
	target := ocispec.Descriptor{MediaType: string(desc.MediaType), Digest: godigest.Digest(desc.Digest.String()), Size: desc.Size}
	var revoked, expired, untrusted []string
	for _, d := range sigs {
		blob, mediaType, err := e.notationSignature(ctx, d)
		if err != nil {
			untrusted = append(untrusted, fmt.Sprintf("signature %s: %v", d.Digest, err))
			continue
		}
		out, err := nt.verifier.Verify(ctx, target, blob, notation.VerifierVerifyOptions{ArtifactReference: e.ref.String(), SignatureMediaType: mediaType})
		if err == nil {
			return notationResult{passed: notationSigner(st.Name, out)}
		}
		msg := fmt.Sprintf("signature %s: %v", d.Digest, err)
		switch notationFailure(out) {
		case trustpolicy.TypeRevocation:
			if strings.Contains(err.Error(), "is revoked") {
				revoked = append(revoked, msg)
			} else {
				// Unknown: the CRL or OCSP responder did not answer; says nothing about
				// the digest (see networkMarkers).
				untrusted = append(untrusted, msg)
			}
		case trustpolicy.TypeExpiry:
			expired = append(expired, msg)
		case trustpolicy.TypeAuthenticTimestamp:
			if strings.Contains(err.Error(), "expired") {
				expired = append(expired, msg)
			} else {
				untrusted = append(untrusted, msg)
			}
		default:
			untrusted = append(untrusted, msg)
		}
	}
	var fails []string
	prefix := fmt.Sprintf("Notation trust policy statement %s for %s", st.Name, e.ref.Name())
	if len(revoked) > 0 {
		fails = append(fails, fmt.Sprintf("%s: %s: %s", notationRevoked, prefix, strings.Join(revoked, "; ")))
	}
	if len(expired) > 0 {
		fails = append(fails, fmt.Sprintf("%s: %s: %s", notationExpired, prefix, strings.Join(expired, "; ")))
	}
	if len(untrusted) > 0 {
		fails = append(fails, fmt.Sprintf("no matching signatures: %s: %s", prefix, strings.Join(untrusted, "; ")))
	}
	return notationResult{fails: fails}
}

// notationFailure is the verification type whose enforced check failed.
func notationFailure(out *notation.VerificationOutcome) trustpolicy.ValidationType {
	if out == nil {
		return ""
	}
	for _, r := range out.VerificationResults {
		if r.Error != nil && r.Action == trustpolicy.ActionEnforce {
			return r.Type
		}
	}
	return ""
}

// notationSignature reads one signature referrer: a manifest whose single layer is the
// envelope (JWS or COSE), as notation pushes it.
func (e *evaluation) notationSignature(ctx context.Context, d v1.Descriptor) ([]byte, string, error) {
	ref := e.ref.Context().Digest(d.Digest.String())
	img, err := remote.Image(ref, append(e.remote, remote.WithContext(ctx))...)
	if err != nil {
		return nil, "", err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, "", err
	}
	if m.Subject == nil || m.Subject.Digest.String() != e.ref.DigestStr() {
		return nil, "", fmt.Errorf("its manifest's subject is not %s", e.ref.DigestStr())
	}
	if len(m.Layers) != 1 {
		return nil, "", fmt.Errorf("%d layers, expected exactly one", len(m.Layers))
	}
	mt := string(m.Layers[0].MediaType)
	if mt != jws.MediaTypeEnvelope && mt != cose.MediaTypeEnvelope {
		return nil, "", fmt.Errorf("envelope of media type %s, neither JWS nor COSE", mt)
	}
	l, err := remote.Layer(e.ref.Context().Digest(m.Layers[0].Digest.String()), append(e.remote, remote.WithContext(ctx))...)
	if err != nil {
		return nil, "", err
	}
	rc, err := l.Compressed() // verified against its digest while read
	if err != nil {
		return nil, "", err
	}
	defer rc.Close()
	blob, err := io.ReadAll(rc)
	if err != nil {
		return nil, "", err
	}
	return blob, mt, nil
}

// notationSigner is the evidence of a passing signature: its signing certificate.
func notationSigner(statement string, out *notation.VerificationOutcome) *trust.AuthorityResult {
	a := &trust.AuthorityResult{Policy: notationPolicyPrefix + statement, Authority: "notation"}
	if out != nil && out.EnvelopeContent != nil && len(out.EnvelopeContent.SignerInfo.CertificateChain) > 0 {
		leaf := out.EnvelopeContent.SignerInfo.CertificateChain[0]
		a.Signers = []trust.Signer{{Subject: leaf.Subject.String(), Issuer: leaf.Issuer.String()}}
	}
	return a
}
