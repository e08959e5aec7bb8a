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

	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	webhookcip "github.com/sigstore/policy-controller/pkg/webhook/clusterimagepolicy"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"knative.dev/pkg/apis"

	"github.com/trainenv/trainenv/internal/trust/vulngate"
)

// compiled is one ClusterImagePolicy prepared for policy-controller's engine, the way
// policy-controller's own reconciler prepares it for its webhook: defaulted, validated,
// referenced Secrets and ConfigMaps inlined, converted to the webhook's form and
// round-tripped through JSON (which is what parses the public keys).
type compiled struct {
	name string
	// version identifies exactly what is evaluated: UID, generation and, when the policy
	// references Secrets or ConfigMaps, a hash of their inlined content. It is part of
	// the result cache key, so a changed policy or rotated key never reuses a verdict.
	version    string
	generation int64
	uid        string
	hasRefs    bool
	cip        webhookcip.ClusterImagePolicy
	keyIDs     map[string]string // authority name -> key id, for key authorities
	trustRoots []string          // TrustRoot names the authorities reference
	warnings   []string          // validation warnings, shown with the verdict
	// gate is the policy's vulnerability gate (its vulngate.AnnotationGate annotation, kept
	// verbatim in gateSpec), judged after the engine; nil without the annotation.
	gate     *vulngate.Gate
	gateSpec string
	// err makes the policy unusable; an image it matches fails with InvalidPolicy.
	err error
}

// errInvalid marks policy errors (as opposed to API read errors, which are retried).
var errInvalid = errors.New("invalid policy")

func compile(ctx context.Context, src PolicySource, in *pcv1alpha1.ClusterImagePolicy) *compiled {
	c := &compiled{
		name:       in.Name,
		generation: in.Generation,
		uid:        string(in.UID),
		version:    fmt.Sprintf("%s/%d", in.UID, in.Generation),
		// Images and Match are kept even when the policy is invalid, so that an image it
		// was meant to cover fails closed instead of looking unmatched.
		cip: webhookcip.ClusterImagePolicy{Images: in.Spec.Images, Match: in.Spec.Match},
	}
	// Annotations do not change the generation: the gate's text is part of the version.
	if spec, ok := in.Annotations[vulngate.AnnotationGate]; ok {
		c.gateSpec = spec
		sum := sha256.Sum256([]byte(spec))
		c.version += "/gate-" + hex.EncodeToString(sum[:8])
		g, err := vulngate.ParseGate(spec)
		if err != nil {
			c.err = fmt.Errorf("%w %s: %w", errInvalid, in.Name, err)
			return c
		}
		c.gate = g
	}
	cip := in.DeepCopy()
	cip.SetDefaults(ctx)
	if fe := cip.Validate(ctx); fe != nil {
		if w := fe.Filter(apis.WarningLevel); w != nil {
			c.warnings = append(c.warnings, w.Error())
		}
		if e := fe.Filter(apis.ErrorLevel); e != nil {
			c.err = fmt.Errorf("%w %s: %w", errInvalid, in.Name, e)
			return c
		}
	}
	for _, a := range cip.Spec.Authorities {
		if f := a.SignatureFormat; f != "" && f != formatLegacy && f != formatBundle {
			c.err = fmt.Errorf("%w %s: authority %s: signatureFormat %q is neither %q nor %q (unset: either format)", errInvalid, in.Name, a.Name, f, formatLegacy, formatBundle)
			return c
		}
	}
	refs, err := inline(ctx, src, cip)
	if err != nil {
		c.err = fmt.Errorf("%w %s: %w", errInvalid, in.Name, err)
		return c
	}
	if refs != "" {
		c.hasRefs = true
		sum := sha256.Sum256([]byte(refs))
		c.version += "/" + hex.EncodeToString(sum[:8])
	}
	// policy-controller's webhook decodes policies from JSON, and only that decoding
	// parses public keys and source options: do the same round trip.
	raw, err := json.Marshal(webhookcip.ConvertClusterImagePolicyV1alpha1ToWebhook(cip))
	if err == nil {
		err = json.Unmarshal(raw, &c.cip)
	}
	if err != nil {
		c.err = fmt.Errorf("%w %s: %w", errInvalid, in.Name, err)
		return c
	}
	c.keyIDs = keyIDs(c.cip.Authorities)
	c.trustRoots = trustRootRefs(cip)
	return c
}

// inline replaces Secret and ConfigMap references with their content, as
// policy-controller's reconciler does, and returns that content for the version hash.
// KMS keys and remote policy URLs need network access that trainenv does not assume; they
// are reported as unsupported rather than silently skipped.
func inline(ctx context.Context, src PolicySource, cip *pcv1alpha1.ClusterImagePolicy) (string, error) {
	var refs strings.Builder
	for i := range cip.Spec.Authorities {
		a := &cip.Spec.Authorities[i]
		if a.Key != nil && strings.Contains(a.Key.KMS, "://") {
			return "", fmt.Errorf("authority %s: KMS keys (%s) are not supported by trainenv yet; inline the public key", a.Name, a.Key.KMS)
		}
		for _, k := range []*pcv1alpha1.KeyRef{a.Key, caCert(a.Keyless)} {
			if k == nil || k.SecretRef == nil {
				continue
			}
			data, err := secretKey(ctx, src, k.SecretRef.Name)
			if err != nil {
				return "", fmt.Errorf("authority %s: %w", a.Name, err)
			}
			k.Data, k.SecretRef = data, nil
			refs.WriteString(data)
		}
		for j := range a.Attestations {
			if err := inlinePolicy(ctx, src, a.Attestations[j].Policy, &refs); err != nil {
				return "", fmt.Errorf("authority %s attestation %s: %w", a.Name, a.Attestations[j].Name, err)
			}
		}
	}
	if err := inlinePolicy(ctx, src, cip.Spec.Policy, &refs); err != nil {
		return "", fmt.Errorf("policy: %w", err)
	}
	return refs.String(), nil
}

func caCert(k *pcv1alpha1.KeylessRef) *pcv1alpha1.KeyRef {
	if k == nil {
		return nil
	}
	return k.CACert
}

// secretKey reads the one public key a referenced Secret must hold (policy-controller's rule).
func secretKey(ctx context.Context, src PolicySource, name string) (string, error) {
	s, err := src.Secret(ctx, name)
	if err != nil {
		return "", fmt.Errorf("reading Secret %s: %w", name, err)
	}
	if len(s.Data) != 1 {
		return "", fmt.Errorf("secret %s must hold exactly one public key, it has %d entries", name, len(s.Data))
	}
	for _, v := range s.Data {
		if _, err := cryptoutils.UnmarshalPEMToPublicKey(v); err != nil {
			return "", fmt.Errorf("secret %s holds an invalid public key: %w", name, err)
		}
		return string(v), nil
	}
	return "", nil
}

func inlinePolicy(ctx context.Context, src PolicySource, p *pcv1alpha1.Policy, refs *strings.Builder) error {
	if p == nil {
		return nil
	}
	if p.Remote != nil {
		return fmt.Errorf("remote policies (%s) are not supported by trainenv yet; use data or configMapRef", p.Remote.URL.String())
	}
	if p.ConfigMapRef == nil {
		return nil
	}
	cm, err := src.ConfigMap(ctx, p.ConfigMapRef.Name)
	if err != nil {
		return fmt.Errorf("reading ConfigMap %s: %w", p.ConfigMapRef.Name, err)
	}
	data := cm.Data[p.ConfigMapRef.Key]
	if data == "" {
		return fmt.Errorf("ConfigMap %s has no key %q", p.ConfigMapRef.Name, p.ConfigMapRef.Key)
	}
	p.Data, p.ConfigMapRef = data, nil
	refs.WriteString(data)
	return nil
}

// keyIDs names each key authority's public key. policy-controller reports no signer for
// key-based signatures, but a key authority holds exactly one key, so the authority that
// passed names the key that signed.
func keyIDs(as []webhookcip.Authority) map[string]string {
	ids := map[string]string{}
	for _, a := range as {
		if a.Key == nil || len(a.Key.PublicKeys) == 0 {
			continue
		}
		der, err := x509.MarshalPKIXPublicKey(a.Key.PublicKeys[0])
		if err != nil {
			continue
		}
		sum := sha256.Sum256(der)
		ids[a.Name] = "SHA256:" + hex.EncodeToString(sum[:])
	}
	return ids
}

func trustRootRefs(cip *pcv1alpha1.ClusterImagePolicy) []string {
	var names []string
	add := func(n string) {
		if n != "" {
			names = append(names, n)
		}
	}
	for _, a := range cip.Spec.Authorities {
		if a.Keyless != nil {
			add(a.Keyless.TrustRootRef)
		}
		if a.CTLog != nil {
			add(a.CTLog.TrustRootRef)
		}
		if a.RFC3161Timestamp != nil {
			add(a.RFC3161Timestamp.TrustRootRef)
		}
	}
	return names
}
