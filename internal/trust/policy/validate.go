package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/authn/k8schain"
	kauth "github.com/google/go-containerregistry/pkg/authn/kubernetes"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	cpolicy "github.com/sigstore/cosign/v2/pkg/policy"
	"github.com/sigstore/policy-controller/pkg/apis/config"
	"github.com/sigstore/policy-controller/pkg/webhook"
	webhookcip "github.com/sigstore/policy-controller/pkg/webhook/clusterimagepolicy"
	"github.com/sigstore/policy-controller/pkg/webhook/registryauth"
	"knative.dev/pkg/apis"
	kubeclient "knative.dev/pkg/client/injection/kube/client"
)

// Signature formats an authority may pin with signatureFormat. Without it, an authority
// finds signatures and attestations in either format, so that images signed by cosign v2
// (legacy tags) and by cosign v3 (bundles) both verify under one policy.
const (
	formatLegacy = "legacy"
	formatBundle = "bundle"
)

// evaluation is one verification of one digest: what every policy shares.
type evaluation struct {
	namespace string
	ref       name.Digest
	kc        authn.Keychain
	// legacy are the engine's registry options (the evaluation's transport and puller).
	legacy ociremote.Option
	// remote are the same options for trainenv's own reads (bundles, config files).
	remote  []remote.Option
	bundles *bundleFetcher
	keys    *config.SigstoreKeysMap
}

// validatePolicy is policy-controller's webhook.ValidatePolicy (v0.13.1), step for step,
// with one change: each authority also reads sigstore bundles attached as OCI referrers
// (unless it pins signatureFormat: legacy), which the engine cannot. Legacy signatures and
// attestations are still verified by the engine's own per-authority functions; the
// verdict is the engine's rule applied to what either format yields: an authority passes
// when it finds a trusted signature (or, with attestations, every required attestation)
// in either format, a policy passes when any authority does and its CIP-level policy
// accepts the authorities' matches.
func (e *evaluation) validatePolicy(ctx context.Context, cip webhookcip.ClusterImagePolicy) (*webhook.PolicyResult, []error) {
	type result struct {
		name         string
		static       bool
		attestations map[string][]webhook.PolicyAttestation
		signatures   []webhook.PolicySignature
		err          error
	}
	results := make([]result, len(cip.Authorities))
	var wg sync.WaitGroup
	for i, a := range cip.Authorities {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[i]
			r.name = a.Name
			opts := []ociremote.Option{e.legacy}
			opts = append(opts, a.RemoteOpts...)
			pullSecrets, err := a.SourceSignaturePullSecretsOpts(ctx, e.namespace)
			if err != nil {
				r.err = err
				return
			}
			opts = append(opts, pullSecrets...)
			switch {
			case a.Static != nil:
				if a.Static.Action == "fail" {
					r.err = cosign.NewVerificationError("disallowed by static policy: %s", a.Static.Message)
					return
				}
				r.static = true
			case len(a.Attestations) > 0:
				r.attestations, r.err = e.attestations(ctx, a, opts)
			default:
				r.signatures, r.err = e.signatures(ctx, a, opts)
			}
		}()
	}
	wg.Wait()

	errs := make([]error, 0, len(cip.Authorities))
	pr := &webhook.PolicyResult{AuthorityMatches: make(map[string]webhook.AuthorityMatch, len(cip.Authorities))}
	for _, r := range results {
		switch {
		case r.err != nil:
			errs = append(errs, asFieldError(cip.Mode == "warn", r.err))
		case len(r.signatures) > 0:
			pr.AuthorityMatches[r.name] = webhook.AuthorityMatch{Signatures: r.signatures}
		case len(r.attestations) > 0:
			pr.AuthorityMatches[r.name] = webhook.AuthorityMatch{Attestations: r.attestations}
		case r.static:
			pr.AuthorityMatches[r.name] = webhook.AuthorityMatch{Static: true}
		default:
			errs = append(errs, fmt.Errorf("failed to process authority: %s", r.name))
		}
	}
	if len(pr.AuthorityMatches) == 0 {
		return nil, errs
	}
	if cip.Policy == nil {
		return pr, errs
	}
	if cip.Policy.FetchConfigFile != nil && *cip.Policy.FetchConfigFile {
		cfgs, err := configFiles(ctx, e.ref, e.remote)
		if err != nil {
			return nil, append(errs, asFieldError(cip.Mode == "warn", err))
		}
		pr.Config = cfgs
	}
	// includeSpec, includeObjectMeta and includeTypeMeta see no object: trainenv verifies
	// before it creates one (see the package comment).
	raw, err := json.Marshal(pr)
	if err != nil {
		return nil, append(errs, err)
	}
	warn, err := cpolicy.EvaluatePolicyAgainstJSON(ctx, "ClusterImagePolicy", cip.Policy.Type, cip.Policy.Data, raw)
	if err != nil {
		return nil, append(errs, asFieldError(cip.Mode == "warn", err))
	}
	if warn != nil {
		return nil, append(errs, asFieldError(cip.Mode == "warn", warn))
	}
	return pr, errs
}

// asFieldError is the engine's: a warn-mode policy's failures are warnings.
func asFieldError(warn bool, err error) *apis.FieldError {
	r := &apis.FieldError{Message: err.Error()}
	if warn {
		return r.At(apis.WarningLevel)
	}
	return r.At(apis.ErrorLevel)
}

func wants(a webhookcip.Authority, format string) bool {
	return a.SignatureFormat == "" || a.SignatureFormat == format
}

// signatures: the engine's legacy signatures and the bundle signatures, together.
func (e *evaluation) signatures(ctx context.Context, a webhookcip.Authority, opts []ociremote.Option) ([]webhook.PolicySignature, error) {
	var (
		wg                  sync.WaitGroup
		legacy, bundled     []webhook.PolicySignature
		legacyErr, bundlErr error
	)
	if wants(a, formatLegacy) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			la := a
			la.SignatureFormat = ""
			legacy, legacyErr = webhook.ValidatePolicySignaturesForAuthority(ctx, e.ref, la, opts...)
		}()
	}
	if wants(a, formatBundle) {
		bundled, bundlErr = e.bundleSignatures(ctx, a)
	}
	wg.Wait()
	if sigs := slices.Concat(legacy, bundled); len(sigs) > 0 {
		return sigs, nil
	}
	return nil, joinFormats(legacyErr, bundlErr)
}

// joinFormats says why neither format passed, each in its own words (the reasons are
// classified from them: an untrusted signer in either format outranks a missing one).
func joinFormats(legacyErr, bundleErr error) error {
	switch {
	case legacyErr == nil:
		return bundleErr
	case bundleErr == nil:
		return legacyErr
	}
	return fmt.Errorf("%w; sigstore bundles: %w", legacyErr, bundleErr)
}

func (e *evaluation) bundleSignatures(ctx context.Context, a webhookcip.Authority) ([]webhook.PolicySignature, error) {
	verified, err := e.verifiedBundles(ctx, a, bundleSignatures)
	if err != nil {
		return nil, err
	}
	var sigs []webhook.PolicySignature
	var errs []error
	for _, v := range verified {
		if v.err != nil {
			errs = append(errs, v.err)
			continue
		}
		if v.b.predicateType != cosignSignPredicate {
			errs = append(errs, fmt.Errorf("sigstore bundle %s is an attestation (%s), not a signature", v.b.digest, v.b.predicateType))
			continue
		}
		sigs = append(sigs, v.b.sig)
	}
	if len(sigs) == 0 {
		if len(errs) == 0 {
			return nil, fmt.Errorf("no signatures found: %w", errNoBundles)
		}
		return nil, fmt.Errorf("no matching signatures for authority %s for %s: %w", a.Name, e.ref.Name(), errors.Join(errs...))
	}
	return sigs, nil
}

type bundleOutcome struct {
	b   verifiedBundle
	err error
}

// verifiedBundles fetches the bundles of kind for a's signature source and verifies each.
func (e *evaluation) verifiedBundles(ctx context.Context, a webhookcip.Authority, kind bundleKind) ([]bundleOutcome, error) {
	repo, err := signatureRepo(e.ref, a)
	if err != nil {
		return nil, err
	}
	f := e.bundles
	if kc, err := e.pullSecrets(ctx, a); err != nil {
		return nil, err
	} else if kc != nil {
		// Registries holding signatures elsewhere may need other credentials; fetch
		// with them, through the same transport.
		f = newBundleFetcher(append(append([]remote.Option{}, e.remote...), remote.WithAuthFromKeychain(kc)))
	}
	fetched, err := f.fetch(ctx, e.ref, repo, kind)
	if err != nil {
		return nil, err
	}
	if len(fetched) == 0 {
		return nil, nil
	}
	ba, err := newBundleAuthority(ctx, a, e.keys)
	if err != nil {
		return nil, err
	}
	out := make([]bundleOutcome, 0, len(fetched))
	for _, fb := range fetched {
		b, err := ba.verify(e.ref, fb)
		out = append(out, bundleOutcome{b: b, err: err})
	}
	return out, nil
}

// signatureRepo is where a's signatures live: the last oci source, as the engine's
// ociremote.WithTargetRepository options do, else the image's own repository.
func signatureRepo(ref name.Digest, a webhookcip.Authority) (name.Repository, error) {
	repo := ref.Repository
	for _, s := range a.Sources {
		if s.OCI == "" {
			continue
		}
		r, err := name.NewRepository(s.OCI)
		if err != nil {
			return repo, fmt.Errorf("failed to determine source: %w", err)
		}
		repo = r
	}
	return repo, nil
}

// pullSecrets is the keychain of a's signaturePullSecrets, built as the engine builds it.
func (e *evaluation) pullSecrets(ctx context.Context, a webhookcip.Authority) (authn.Keychain, error) {
	var secrets []string
	for _, s := range a.Sources {
		for _, ps := range s.SignaturePullSecrets {
			secrets = append(secrets, ps.Name)
		}
	}
	if len(secrets) == 0 {
		return nil, nil
	}
	return registryauth.NewK8sKeychain(ctx, kubeclient.Get(ctx), k8schain.Options{
		Namespace: e.namespace, ServiceAccountName: kauth.NoServiceAccount, ImagePullSecrets: secrets})
}

// attestations: every attestation the authority requires must be found, verified and
// accepted by its policy, in either format. Legacy attestations are judged by the engine,
// bundle attestations by the engine's own rule (the loop of its
// ValidatePolicyAttestationsForAuthority) over the verified bundles.
func (e *evaluation) attestations(ctx context.Context, a webhookcip.Authority, opts []ociremote.Option) (map[string][]webhook.PolicyAttestation, error) {
	la := a
	la.SignatureFormat = ""
	legacyAll := func() (map[string][]webhook.PolicyAttestation, error) {
		return webhook.ValidatePolicyAttestationsForAuthority(ctx, e.ref, la, opts...)
	}
	if !wants(a, formatBundle) {
		return legacyAll()
	}
	var (
		wg        sync.WaitGroup
		legacy    map[string][]webhook.PolicyAttestation
		legacyErr error
	)
	if wants(a, formatLegacy) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			legacy, legacyErr = legacyAll()
		}()
	}
	bundled, bundleErrs, bundleErr := e.bundleAttestations(ctx, a)
	wg.Wait()
	if !wants(a, formatLegacy) {
		if bundleErr != nil {
			return nil, bundleErr
		}
		legacyErr = nil
	}
	// The engine answers for all required attestations at once. When it failed and the
	// bundles hold some of them, ask it for each one alone: it may hold the others.
	legacyErrs := map[string]error{}
	if legacyErr != nil && len(a.Attestations) > 1 && len(bundled) > 0 {
		legacy = map[string][]webhook.PolicyAttestation{}
		for _, w := range a.Attestations {
			one := la
			one.Attestations = []webhookcip.AttestationPolicy{w}
			got, err := webhook.ValidatePolicyAttestationsForAuthority(ctx, e.ref, one, opts...)
			if err != nil {
				legacyErrs[w.Name] = err
			}
			legacy[w.Name] = got[w.Name]
		}
	}
	ret := make(map[string][]webhook.PolicyAttestation, len(a.Attestations))
	for _, w := range a.Attestations {
		got := slices.Concat(legacy[w.Name], bundled[w.Name])
		if len(got) > 0 {
			ret[w.Name] = got
			continue
		}
		lerr := legacyErrs[w.Name]
		if lerr == nil {
			lerr = legacyErr
		}
		berr := bundleErrs[w.Name]
		if berr == nil {
			berr = bundleErr
		}
		return nil, joinFormats(lerr, berr)
	}
	return ret, nil
}

// bundleAttestations returns, per required attestation, the verified bundle attestations
// that satisfy it, or why none did; err alone when no bundle attestation verified at all.
func (e *evaluation) bundleAttestations(ctx context.Context, a webhookcip.Authority) (map[string][]webhook.PolicyAttestation, map[string]error, error) {
	outcomes, err := e.verifiedBundles(ctx, a, bundleAttestations)
	if err != nil {
		return nil, nil, err
	}
	var verified []verifiedBundle
	var errs []error
	for _, o := range outcomes {
		if o.err != nil {
			errs = append(errs, o.err)
			continue
		}
		if o.b.predicateType == cosignSignPredicate {
			continue
		}
		verified = append(verified, o.b)
	}
	if len(verified) == 0 {
		msg := fmt.Sprintf("%s for authority %s for %s", cosign.ErrNoMatchingAttestationsMessage, a.Name, e.ref.Name())
		if len(errs) == 0 {
			return nil, nil, fmt.Errorf("%s: %w", msg, errNoBundles)
		}
		return nil, nil, fmt.Errorf("%s: %w", msg, errors.Join(errs...))
	}
	ret := map[string][]webhook.PolicyAttestation{}
	failed := map[string]error{}
	checked := map[string]struct{}{}
	for _, w := range a.Attestations {
		var first error
		var ok []webhook.PolicyAttestation
		for _, va := range verified {
			attBytes, gotType, err := cpolicy.AttestationToPayloadJSON(ctx, w.PredicateType, va)
			if gotType != "" {
				checked[gotType] = struct{}{}
			}
			if err != nil {
				if first == nil {
					first = err
				}
				continue
			}
			if attBytes == nil {
				continue
			}
			if w.Type != "" {
				if warn, err := cpolicy.EvaluatePolicyAgainstJSON(ctx, w.Name, w.Type, w.Data, attBytes); err != nil || warn != nil {
					if first == nil {
						first = err
						if err == nil {
							first = warn
						}
					}
					continue
				}
			}
			ok = append(ok, webhook.PolicyAttestation{PolicySignature: va.sig, PredicateType: w.PredicateType, Payload: attBytes, Digest: va.digest})
		}
		switch {
		case len(ok) > 0:
			ret[w.Name] = ok
		case first != nil:
			failed[w.Name] = first
		default:
			types := make([]string, 0, len(checked))
			for t := range checked {
				types = append(types, t)
			}
			failed[w.Name] = fmt.Errorf("%s with type %s, checked the following predicateTypes: %q", cosign.ErrNoMatchingAttestationsMessage, w.PredicateType, strings.Join(types, ","))
		}
	}
	return ret, failed, nil
}

// configFiles is the engine's getConfigs (for a CIP-level policy with fetchConfigFile):
// the config of the image, or of each image of an index, by platform.
func configFiles(ctx context.Context, ref name.Reference, opts []remote.Option) (map[string]*v1.ConfigFile, error) {
	desc, err := remote.Get(ref, append(opts, remote.WithContext(ctx))...)
	if err != nil {
		return nil, fmt.Errorf("failed to get ref %s : %w", ref.String(), err)
	}
	out := map[string]*v1.ConfigFile{}
	switch desc.MediaType {
	case types.OCIImageIndex, types.DockerManifestList:
		ii, err := desc.ImageIndex()
		if err != nil {
			return nil, err
		}
		im, err := ii.IndexManifest()
		if err != nil {
			return nil, err
		}
		for _, m := range im.Manifests {
			sub, err := configFiles(ctx, ref.Context().Digest(m.Digest.String()), opts)
			if err != nil {
				return nil, fmt.Errorf("failed to get a ConfigFile: %w", err)
			}
			for k, v := range sub {
				out[k] = v
			}
		}
	case types.OCIManifestSchema1, types.DockerManifestSchema2:
		img, err := desc.Image()
		if err != nil {
			return nil, err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("getting ConfigFile for %s: %w", ref.String(), err)
		}
		out[v1.Platform{Architecture: cf.Architecture, OS: cf.OS, OSVersion: cf.OSVersion, Variant: cf.Variant}.String()] = cf
	default:
		return nil, fmt.Errorf("unknown mime type for %s: %v", ref.String(), desc.MediaType)
	}
	return out, nil
}
