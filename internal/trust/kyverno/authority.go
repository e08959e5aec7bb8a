package kyverno

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	policiesv1 "github.com/kyverno/api/api/policies.kyverno.io/v1"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"

	"github.com/trainenv/trainenv/internal/trust/policy"
)

// authority adds the attestor (and attestations) for one ClusterImagePolicy authority to
// s, and returns the CEL expression that holds for an image the authority accepts,
// mirroring policy-controller: an authority without attestations needs a signature; one
// with attestations needs each of them, signed by it.
func authority(ctx context.Context, src policy.PolicySource, s *policiesv1.ImageValidatingPolicySpec, a pcv1alpha1.Authority, roots map[string]*pcv1alpha1.TrustRoot) (string, []string, error) {
	if a.Static != nil {
		return fmt.Sprintf("%t", a.Static.Action == "pass"), nil, nil
	}
	cosign, err := attestor(ctx, src, a, roots)
	if err != nil {
		return "", nil, err
	}
	s.Attestors = append(s.Attestors, policiesv1.Attestor{Name: a.Name, Cosign: cosign})
	who := fmt.Sprintf("[attestors[%q]]", a.Name)
	var notes []string
	if a.SignatureFormat != "" {
		notes = append(notes, fmt.Sprintf("authority %s: Kyverno's cosign attestor has no signature format setting: it reads "+
			"legacy signatures and sigstore bundles alike, so signatureFormat: %s is checked by trainenv only", a.Name, a.SignatureFormat))
	}
	if len(a.Attestations) == 0 {
		return fmt.Sprintf("verifyImageSignatures(image, %s) > 0", who), notes, nil
	}
	var all []string
	if cosign.CTLog != nil && cosign.CTLog.InsecureIgnoreTlog {
		notes = append(notes, fmt.Sprintf("authority %s: Kyverno (v1.19.1 checked) rejects attestations without a transparency-log entry "+
			"even when the attestor ignores the log (kyverno/kyverno#17109), so it denies pods whose images were attested offline", a.Name))
	}
	for _, att := range a.Attestations {
		predicate, err := predicateURI(att.PredicateType)
		if err != nil {
			return "", nil, fmt.Errorf("attestation %s: %w", att.Name, err)
		}
		name := a.Name + "-" + att.Name
		s.Attestations = append(s.Attestations, policiesv1.Attestation{Name: name, InToto: &policiesv1.InToto{Type: predicate}})
		all = append(all, fmt.Sprintf("verifyAttestationSignatures(image, attestations[%q], %s) > 0", name, who))
		if att.Policy != nil {
			notes = append(notes, fmt.Sprintf("authority %s attestation %s: its %s predicate policy is checked by trainenv only", a.Name, att.Name, att.Policy.Type))
		}
	}
	return "(" + strings.Join(all, " && ") + ")", notes, nil
}

// attestor is the Kyverno Cosign attestor trusting what the authority trusts. The
// transparency log is checked only where the authority asks for it, as policy-controller
// does: an authority without ctlog (or with a TrustRoot and no Rekor) ignores it.
func attestor(ctx context.Context, src policy.PolicySource, a pcv1alpha1.Authority, roots map[string]*pcv1alpha1.TrustRoot) (*policiesv1.Cosign, error) {
	c := &policiesv1.Cosign{CTLog: &policiesv1.CTLog{InsecureIgnoreTlog: true}}
	switch {
	case a.Key != nil:
		key, err := keyData(ctx, src, a.Key)
		if err != nil {
			return nil, err
		}
		c.Key = &policiesv1.Key{Data: key, KMS: a.Key.KMS, HashAlgorithm: a.Key.HashAlgorithm}
	case a.Keyless != nil:
		k := &policiesv1.Keyless{}
		for _, id := range a.Keyless.Identities {
			k.Identities = append(k.Identities, policiesv1.Identity{Issuer: id.Issuer, Subject: id.Subject, IssuerRegExp: id.IssuerRegExp, SubjectRegExp: id.SubjectRegExp})
		}
		if a.Keyless.InsecureIgnoreSCT != nil {
			c.CTLog.InsecureIgnoreSCT = *a.Keyless.InsecureIgnoreSCT
		}
		switch {
		case a.Keyless.TrustRootRef != "":
			tr, ok := roots[a.Keyless.TrustRootRef]
			if !ok || tr.Spec.SigstoreKeys == nil {
				return nil, fmt.Errorf("TrustRoot %s is missing or has no sigstoreKeys (TUF-backed TrustRoots are not translated)", a.Keyless.TrustRootRef)
			}
			var chain bytes.Buffer
			for _, ca := range tr.Spec.SigstoreKeys.CertificateAuthorities {
				chain.Write(ca.CertChain)
			}
			k.Roots = chain.String()
			if logs := tr.Spec.SigstoreKeys.CTLogs; len(logs) > 0 {
				c.CTLog.CTLogPubKey = string(logs[0].PublicKey)
			}
		case a.Keyless.CACert != nil:
			roots, err := keyData(ctx, src, a.Keyless.CACert)
			if err != nil {
				return nil, err
			}
			k.Roots = roots
		default:
			// Public Sigstore: Kyverno's defaults (public Fulcio roots and Rekor) apply.
			c.CTLog = nil
		}
		c.Keyless = k
	default:
		return nil, fmt.Errorf("neither key, keyless nor static")
	}
	if err := transparencyLog(c, a, roots); err != nil {
		return nil, err
	}
	if len(a.Sources) > 0 && a.Sources[0].OCI != "" {
		c.Source = &policiesv1.Source{Repository: a.Sources[0].OCI}
	}
	return c, nil
}

// transparencyLog turns the authority's ctlog (Rekor) into Kyverno's.
func transparencyLog(c *policiesv1.Cosign, a pcv1alpha1.Authority, roots map[string]*pcv1alpha1.TrustRoot) error {
	if a.CTLog == nil {
		return nil
	}
	if c.CTLog == nil {
		c.CTLog = &policiesv1.CTLog{}
	}
	c.CTLog.InsecureIgnoreTlog = false
	if a.CTLog.URL != nil {
		c.CTLog.URL = a.CTLog.URL.String()
	}
	if ref := a.CTLog.TrustRootRef; ref != "" {
		tr, ok := roots[ref]
		if !ok || tr.Spec.SigstoreKeys == nil || len(tr.Spec.SigstoreKeys.TLogs) == 0 {
			return fmt.Errorf("TrustRoot %s is missing or names no Rekor (tLogs)", ref)
		}
		c.CTLog.RekorPubKey = string(tr.Spec.SigstoreKeys.TLogs[0].PublicKey)
		if c.CTLog.URL == "" {
			c.CTLog.URL = tr.Spec.SigstoreKeys.TLogs[0].BaseURL.String()
		}
	}
	return nil
}

// keyData is the PEM of an inline or Secret-held key (one entry, policy-controller's rule).
func keyData(ctx context.Context, src policy.PolicySource, k *pcv1alpha1.KeyRef) (string, error) {
	if k.SecretRef == nil {
		return k.Data, nil
	}
	s, err := src.Secret(ctx, k.SecretRef.Name)
	if err != nil {
		return "", fmt.Errorf("reading Secret %s: %w", k.SecretRef.Name, err)
	}
	if len(s.Data) != 1 {
		return "", fmt.Errorf("secret %s must hold exactly one key, it has %d entries", k.SecretRef.Name, len(s.Data))
	}
	for _, v := range s.Data {
		return string(v), nil
	}
	return "", nil
}

// predicateURIs are cosign's short predicate type names (cosign attest --type), which
// ClusterImagePolicies may use; Kyverno wants the URI.
var predicateURIs = map[string]string{
	"custom":           "https://cosign.sigstore.dev/attestation/v1",
	"slsaprovenance":   "https://slsa.dev/provenance/v0.2",
	"slsaprovenance02": "https://slsa.dev/provenance/v0.2",
	"slsaprovenance1":  "https://slsa.dev/provenance/v1",
	"spdx":             "https://spdx.dev/Document",
	"spdxjson":         "https://spdx.dev/Document",
	"cyclonedx":        "https://cyclonedx.org/bom",
	"link":             "https://in-toto.io/Link/v1",
	"vuln":             "https://cosign.sigstore.dev/attestation/vuln/v1",
	"openvex":          "https://openvex.dev/ns",
}

func predicateURI(t string) (string, error) {
	if strings.Contains(t, "://") {
		return t, nil
	}
	if uri, ok := predicateURIs[t]; ok {
		return uri, nil
	}
	return "", fmt.Errorf("unknown predicate type %q", t)
}
