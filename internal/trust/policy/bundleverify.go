package policy

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/policy-controller/pkg/apis/config"
	pctuf "github.com/sigstore/policy-controller/pkg/tuf"
	"github.com/sigstore/policy-controller/pkg/webhook"
	webhookcip "github.com/sigstore/policy-controller/pkg/webhook/clusterimagepolicy"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/proto"

	prototrustroot "github.com/sigstore/protobuf-specs/gen/pb-go/trustroot/v1"
)

// Verifying sigstore bundles for a ClusterImagePolicy authority.
//
// policy-controller v0.13.1's engine cannot do it: cosign v2.5.0's VerifyImageSignatures
// refuses bundles ("not yet implemented", still so in cosign v3.1.3's library: its CLI
// verifies image signatures as attestations), and the engine accepts bundles only for
// keyless authorities that set signatureFormat: bundle, for attestations. So trainenv
// verifies bundles itself, with sigstore-go (v0.7.2, the version cosign v2.5.0 already
// links, so no dependency moves), and builds the same trust from the authority that the
// engine builds for legacy signatures:
//
//   - key: the authority's public key(s), any of which may have signed; certificates are
//     refused (WithKey);
//   - keyless: the CA, CT logs (SCTs required unless insecureIgnoreSCT) and, if named,
//     transparency logs of the TrustRoot the authority references (public Sigstore from
//     TUF when it names none), and the identities, any of which may match;
//   - ctlog: the bundle's transparency-log entry is required and checked (inclusion and
//     integrated time) against the TrustRoot's logs, as the engine requires a Rekor entry;
//     without ctlog no log is required and certificates are checked at the current time,
//     as the engine does;
//   - rfc3161timestamp: a signed timestamp from the TrustRoot's TSA is required instead.
//
// Every bundle must be for the digest being verified: its DSSE statement's subject must
// name it (a bundle copied from another digest is refused). A bundle whose statement has
// cosign's signing predicate (https://sigstore.dev/cosign/sign/v1, what `cosign sign`
// writes) is a signature; any other statement is an attestation, judged by the authority's
// attestations exactly as the engine judges legacy ones. A message-signature bundle (no
// DSSE envelope) is refused, as cosign refuses it for images.
//
// sigstore-go advisories after v0.7.2 (GHSA-9vcr-p3rj-q5q6: thresholds above one log;
// GHSA-wqqc-jjcq-vfxm: validity windows of expiring keys) concern options trainenv does
// not use: every threshold here is 1, and keys carry no validity window.
type bundleAuthority struct {
	verifiers []*verify.SignedEntityVerifier // one per trusted key; one for keyless
	policy    []verify.PolicyOption
}

func newBundleAuthority(ctx context.Context, a webhookcip.Authority, keys *config.SigstoreKeysMap) (*bundleAuthority, error) {
	ba := &bundleAuthority{}
	var base root.TrustedMaterialCollection
	addRoot := func(ref string) error {
		tr, err := trustedRoot(ctx, ref, keys)
		if err != nil {
			return err
		}
		base = append(base, tr)
		return nil
	}
	var vopts []verify.VerifierOption
	switch {
	case a.RFC3161Timestamp != nil:
		if err := addRoot(a.RFC3161Timestamp.TrustRootRef); err != nil {
			return nil, err
		}
		vopts = append(vopts, verify.WithSignedTimestamps(1))
	case a.CTLog != nil:
		if err := addRoot(a.CTLog.TrustRootRef); err != nil {
			return nil, err
		}
		vopts = append(vopts, verify.WithTransparencyLog(1), verify.WithIntegratedTimestamps(1))
	default:
		vopts = append(vopts, verify.WithCurrentTime())
	}
	switch {
	case a.Key != nil:
		if len(a.Key.PublicKeys) == 0 {
			return nil, fmt.Errorf("there are no public keys for authority %s", a.Name)
		}
		ba.policy = []verify.PolicyOption{verify.WithKey()}
		for _, pk := range a.Key.PublicKeys {
			sv, err := signature.LoadVerifier(pk, a.Key.HashAlgorithmCode)
			if err != nil {
				return nil, fmt.Errorf("loading the public key of authority %s: %w", a.Name, err)
			}
			key := root.NewExpiringKey(sv, time.Time{}, time.Time{})
			material := append(root.TrustedMaterialCollection{root.NewTrustedPublicKeyMaterial(
				func(string) (root.TimeConstrainedVerifier, error) { return key, nil })}, base...)
			v, err := verify.NewSignedEntityVerifier(material, vopts...)
			if err != nil {
				return nil, err
			}
			ba.verifiers = append(ba.verifiers, v)
		}
	case a.Keyless != nil:
		if a.Keyless.CACert != nil {
			return nil, fmt.Errorf("authority %s: sigstore bundles under a keyless authority with ca-cert are not supported by trainenv yet; use a TrustRoot (trustRootRef)", a.Name)
		}
		if a.CTLog == nil || a.CTLog.TrustRootRef != a.Keyless.TrustRootRef {
			if err := addRoot(a.Keyless.TrustRootRef); err != nil {
				return nil, err
			}
		}
		if a.Keyless.InsecureIgnoreSCT == nil || !*a.Keyless.InsecureIgnoreSCT {
			vopts = append(vopts, verify.WithSignedCertificateTimestamps(1))
		}
		for _, id := range a.Keyless.Identities {
			san, err := verify.NewSANMatcher(id.Subject, id.SubjectRegExp)
			if err != nil {
				return nil, err
			}
			iss, err := verify.NewIssuerMatcher(id.Issuer, id.IssuerRegExp)
			if err != nil {
				return nil, err
			}
			ci, err := verify.NewCertificateIdentity(san, iss, certificate.Extensions{})
			if err != nil {
				return nil, err
			}
			ba.policy = append(ba.policy, verify.WithCertificateIdentity(ci))
		}
		if len(ba.policy) == 0 {
			// The engine accepts any identity of the CA when none is listed.
			ba.policy = []verify.PolicyOption{verify.WithoutIdentitiesUnsafe()}
		}
		v, err := verify.NewSignedEntityVerifier(base, vopts...)
		if err != nil {
			return nil, err
		}
		ba.verifiers = []*verify.SignedEntityVerifier{v}
	default:
		return nil, fmt.Errorf("authority %s: sigstore bundles need a key or keyless authority", a.Name)
	}
	return ba, nil
}

// trustedRoot is the TrustRoot ref as sigstore-go trusted material: from the keys the
// evaluation holds, or public Sigstore through TUF when ref is empty (as the engine does
// for its bundle path), bounded by ctx.
func trustedRoot(ctx context.Context, ref string, keys *config.SigstoreKeysMap) (root.TrustedMaterial, error) {
	if ref != "" {
		sk, ok := keys.SigstoreKeys[ref]
		if !ok {
			return nil, fmt.Errorf("trustRootRef %s not found", ref)
		}
		return root.NewTrustedRootFromProtobuf(sigstoreGoRoot(sk))
	}
	type res struct {
		tr  *root.TrustedRoot
		err error
	}
	ch := make(chan res, 1)
	go func() {
		tr, err := pctuf.GetTrustedRoot(ctx)
		ch <- res{tr, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("fetching the public Sigstore trusted root: %w", r.err)
		}
		return r.tr, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("fetching the public Sigstore trusted root: %w", ctx.Err())
	}
}

// verifiedBundle is a bundle that passed: its envelope and signer, ready for the policy.
type verifiedBundle struct {
	sig           webhook.PolicySignature
	predicateType string
	envelope      []byte // the DSSE envelope as JSON, as cosign stores a legacy attestation
	digest        string
}

// Payload implements cosign's policy.PayloadProvider for AttestationToPayloadJSON.
func (b verifiedBundle) Payload() ([]byte, error) { return b.envelope, nil }

// verify checks one bundle for ref; the error says why it does not count.
func (ba *bundleAuthority) verify(ref name.Digest, fb fetchedBundle) (verifiedBundle, error) {
	if fb.err != nil {
		return verifiedBundle{}, fb.err
	}
	digest, err := hex.DecodeString(strings.TrimPrefix(ref.DigestStr(), "sha256:"))
	if err != nil || !strings.HasPrefix(ref.DigestStr(), "sha256:") {
		return verifiedBundle{}, fmt.Errorf("unsupported digest %s", ref.DigestStr())
	}
	sc, err := fb.bundle.SignatureContent()
	if err != nil {
		return verifiedBundle{}, err
	}
	env := sc.EnvelopeContent()
	if env == nil {
		return verifiedBundle{}, errors.New("bundle does not contain a DSSE envelope")
	}
	var errs []error
	for _, v := range ba.verifiers {
		res, err := v.Verify(fb.bundle, verify.NewPolicy(verify.WithArtifactDigest("sha256", digest), ba.policy...))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		raw, err := json.Marshal(env.RawEnvelope())
		if err != nil {
			return verifiedBundle{}, err
		}
		out := verifiedBundle{envelope: raw, digest: fb.digest, sig: webhook.PolicySignature{ID: strings.TrimPrefix(fb.digest, "sha256:")}}
		if res.Statement != nil {
			out.predicateType = res.Statement.PredicateType
		}
		if vc, err := fb.bundle.VerificationContent(); err == nil && vc.Certificate() != nil {
			out.sig = certSignature(out.sig.ID, vc.Certificate())
		}
		return out, nil
	}
	return verifiedBundle{}, fmt.Errorf("sigstore bundle %s: %w", fb.digest, errors.Join(errs...))
}

// certSignature describes a certificate signer as the engine does for legacy signatures.
func certSignature(id string, cert *x509.Certificate) webhook.PolicySignature {
	ce := cosign.CertExtensions{Cert: cert}
	sub := ""
	if sans := cryptoutils.GetSubjectAlternateNames(cert); len(sans) > 0 {
		sub = sans[0]
	}
	return webhook.PolicySignature{ID: id, Subject: sub, Issuer: ce.GetIssuer(),
		GithubExtensions: webhook.GithubExtensions{
			WorkflowTrigger: ce.GetCertExtensionGithubWorkflowTrigger(),
			WorkflowSHA:     ce.GetExtensionGithubWorkflowSha(),
			WorkflowName:    ce.GetCertExtensionGithubWorkflowName(),
			WorkflowRepo:    ce.GetCertExtensionGithubWorkflowRepository(),
			WorkflowRef:     ce.GetCertExtensionGithubWorkflowRef(),
		}}
}

// sigstoreGoRoot is a TrustRoot's keys as sigstore-go reads them. policy-controller v0.13.1
// stores each log's ID as the hex text of the key's SHA-256 (cosign's GetTransparencyLogID)
// where the trusted-root format holds the raw bytes, so sigstore-go would find no log for
// an SCT or a transparency-log entry: decode them, in a copy.
func sigstoreGoRoot(sk *config.SigstoreKeys) *prototrustroot.TrustedRoot {
	out := proto.Clone(sk).(*prototrustroot.TrustedRoot)
	for _, logs := range [][]*prototrustroot.TransparencyLogInstance{out.GetTlogs(), out.GetCtlogs()} {
		for _, l := range logs {
			if id := l.GetLogId(); id != nil {
				if raw, err := hex.DecodeString(string(id.KeyId)); err == nil && len(raw) == sha256.Size {
					id.KeyId = raw
				}
			}
		}
	}
	return out
}
