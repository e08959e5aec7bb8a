package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/notaryproject/notation-go/verifier/trustpolicy"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/policy-controller/pkg/apis/config"
	"github.com/sigstore/policy-controller/pkg/webhook"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"
	kubeclient "knative.dev/pkg/client/injection/kube/client"
	"knative.dev/pkg/logging"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/trust"
)

// outcome is one policy's result: a ClusterImagePolicy's from policy-controller's engine,
// or the Notation statement's.
type outcome struct {
	name     string
	warnings []string // the policy's own validation warnings
	// c and result: a ClusterImagePolicy the engine passed; its vulnerability gate
	// (applyGate) still decides in verdict.
	c        *compiled
	result   *webhook.PolicyResult
	passed   bool
	evidence []trust.AuthorityResult // what passed
	fails    []string                // enforcing failures: the digest must not run
	warns    []string                // failures of a warn-mode policy: it runs, with a warning
}

// notationCheck is the Notation statement that covers a digest, if any.
type notationCheck struct {
	trust     *notationTrust
	statement *trustpolicy.TrustPolicy
}

// registryRetry keeps go-containerregistry's own retries short: the reconciler retries
// a returned error with its backoff, and a verification must not sit for seconds on a
// registry that is down.
var registryRetry = remote.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Steps: 2}

// evaluate runs every matching policy through validatePolicy (policy-controller's
// ValidatePolicy, reading sigstore bundles too), in parallel as the webhook does. All of
// them must pass.
func (v *Verifier) evaluate(ctx context.Context, ref name.Digest, req trust.Request, matching []*compiled, keys *config.SigstoreKeysMap, nc notationCheck) (trust.Verdict, error) {
	ctx = logging.WithLogger(ctx, v.opts.Logger)
	ctx = config.ToContext(ctx, &config.Config{ImagePolicyConfig: &config.ImagePolicyConfig{}, SigstoreKeysConfig: keys})
	if v.opts.KubeClient != nil {
		ctx = context.WithValue(ctx, kubeclient.Key{}, v.opts.KubeClient)
	}
	kc := req.Keychain
	if kc == nil {
		kc = authn.NewMultiKeychain() // anonymous
	}
	rec := &recorder{base: v.opts.Transport}
	remoteOpts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc),
		remote.WithTransport(rec), remote.WithRetryBackoff(registryRetry)}
	// One puller for every policy of this evaluation: it pings (and gets a token) once per
	// repository, so each further policy costs only its own manifest and blobs.
	puller, err := remote.NewPuller(remoteOpts...)
	if err != nil {
		return trust.Verdict{}, err
	}
	remoteOpts = append(remoteOpts, remote.Reuse(puller))
	e := &evaluation{namespace: req.Namespace, ref: ref, kc: kc, legacy: ociremote.WithRemoteOptions(remoteOpts...),
		remote: remoteOpts, bundles: newBundleFetcher(remoteOpts), keys: keys}

	for _, c := range matching {
		if v.opts.KubeClient == nil && usesPullSecrets(c) {
			// policy-controller's engine would panic reading them without a client.
			return invalid(ref, matching, fmt.Errorf("%s: signaturePullSecrets need a Kubernetes client, which this operator was not given", c.name)), nil
		}
	}
	out := make([]outcome, len(matching), len(matching)+1)
	var wg sync.WaitGroup
	for i, c := range matching {
		out[i].name, out[i].warnings = c.name, c.warnings
		wg.Add(1)
		go func(o *outcome) {
			defer wg.Done()
			res, errs := e.validatePolicy(ctx, c.cip)
			if res == nil {
				o.fails, o.warns = split(errs)
				return
			}
			o.c, o.result = c, res
		}(&out[i])
	}
	if nc.statement != nil {
		out = append(out, outcome{name: notationPolicyPrefix + nc.statement.Name})
		r := e.notation(ctx, nc.trust, nc.statement)
		o := &out[len(out)-1]
		if r.passed != nil {
			o.passed, o.evidence = true, []trust.AuthorityResult{*r.passed}
		} else {
			o.fails = r.fails
		}
	}
	wg.Wait()
	return v.verdict(ctx, ref, out, rec)
}

// split separates warn-mode failures from enforcing ones the way policy-controller's
// tester does: a FieldError at warning level is a warning, anything else an error.
func split(errs []error) (fails, warns []string) {
	for _, err := range errs {
		var fe *apis.FieldError
		if !errors.As(err, &fe) {
			fails = append(fails, err.Error())
			continue
		}
		if w := fe.Filter(apis.WarningLevel); w != nil {
			warns = append(warns, fieldMessage(w))
		}
		if e := fe.Filter(apis.ErrorLevel); e != nil {
			fails = append(fails, fieldMessage(e))
		}
	}
	if len(fails) == 0 && len(warns) == 0 {
		fails = []string{"no authority passed"}
	}
	return fails, warns
}

// fieldMessage is a FieldError's text without the empty field path it ends with.
func fieldMessage(fe *apis.FieldError) string {
	return strings.TrimRight(strings.TrimSpace(fe.Error()), ": ")
}

func (v *Verifier) verdict(ctx context.Context, ref name.Digest, out []outcome, rec *recorder) (trust.Verdict, error) {
	verdict := trust.Verdict{Digest: ref.String(), CheckedAt: v.opts.Now()}
	var fails, warns, allFails []string
	gateReason := ""
	for _, o := range out {
		verdict.Policies = append(verdict.Policies, o.name)
		verdict.Warnings = append(verdict.Warnings, o.warnings...)
		if o.result != nil {
			g := applyGate(ref, o.c, o.result, verdict.CheckedAt)
			if verdict.Vulnerabilities == nil {
				verdict.Vulnerabilities = summaryOf(o.name, g.summary)
			}
			switch {
			case g.reason == "":
				verdict.Passed = append(verdict.Passed, authorities(o.c, o.result)...)
				if !g.staleAt.IsZero() && (verdict.ExpiresAt.IsZero() || g.staleAt.Before(verdict.ExpiresAt)) {
					verdict.ExpiresAt = g.staleAt
				}
			case o.c.cip.Mode == "warn":
				w := fmt.Sprintf("policy %s (warn mode): %s", o.name, g.message)
				warns = append(warns, w)
				verdict.Warnings = append(verdict.Warnings, w)
			default:
				fails = append(fails, fmt.Sprintf("policy %s: %s", o.name, g.message))
				if gateReason == "" || slices.Index(gateReasons, g.reason) < slices.Index(gateReasons, gateReason) {
					gateReason = g.reason
				}
			}
			continue
		}
		if o.passed {
			verdict.Passed = append(verdict.Passed, o.evidence...)
			continue
		}
		allFails = append(allFails, o.fails...)
		if len(o.fails) > 0 {
			fails = append(fails, fmt.Sprintf("policy %s: %s", o.name, strings.Join(o.fails, "; ")))
		}
		if len(o.warns) > 0 {
			w := fmt.Sprintf("policy %s (warn mode): %s", o.name, strings.Join(o.warns, "; "))
			warns = append(warns, w)
			verdict.Warnings = append(verdict.Warnings, w)
		}
	}
	sort.Strings(verdict.Policies) // ClusterImagePolicies and notation:NAME alike
	if len(fails)+len(warns) > 0 {
		// A failure seen while the registry misbehaved says nothing about the digest.
		err := rec.failure()
		if err == nil {
			err = networkFailure(append(allFails, warns...))
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			if err == nil {
				err = ctxErr
			}
			return trust.Verdict{Status: metav1.ConditionUnknown, Reason: trainenvv1.ReasonRegistryUnavailable, Digest: ref.String(),
				Message: clip(fmt.Sprintf("verifying %s did not finish within %s, the time budget of one verification (the registry is slow or not answering): %v",
					ref.Context().Name(), v.opts.Timeout, err))}, err
		}
		if err != nil {
			reason := trainenvv1.ReasonRegistryUnavailable
			if rec.unauthorized() {
				reason = trainenvv1.ReasonRegistryUnauthorized
			}
			return trust.Verdict{Status: metav1.ConditionUnknown, Reason: reason, Digest: ref.String(),
				Message: clip(fmt.Sprintf("reading signatures of %s or their transparency-log entries: %v", ref.Context().Name(), err))}, err
		}
	}
	if len(fails) > 0 {
		verdict.Status, verdict.Reason = metav1.ConditionFalse, failureReason(allFails)
		if len(allFails) == 0 { // only vulnerability gates refused
			verdict.Reason = gateReason
		}
		verdict.ExpiresAt = time.Time{}
		verdict.Message = clip(fmt.Sprintf("%s is not trusted (%s): %s", ref.Context().Name(), hints[verdict.Reason], strings.Join(fails, " | ")))
		return verdict, nil
	}
	verdict.Status, verdict.Reason = metav1.ConditionTrue, trainenvv1.ReasonVerified
	verdict.Message = fmt.Sprintf("%s verified by %s", shortDigest(ref), describe(verdict.Passed))
	if len(warns) > 0 {
		verdict.Reason = trainenvv1.ReasonVerifiedWithWarnings
		verdict.Message = fmt.Sprintf("%s ALLOWED WITH WARNINGS, only because the failing policies are in warn mode: %s",
			shortDigest(ref), strings.Join(warns, " | "))
		if len(verdict.Passed) > 0 {
			verdict.Message += "; passed: " + describe(verdict.Passed)
		}
		verdict.Message = clip(verdict.Message)
	}
	return verdict, nil
}

// authorities turns one policy's passing authorities into status evidence.
func authorities(c *compiled, res *webhook.PolicyResult) []trust.AuthorityResult {
	out := make([]trust.AuthorityResult, 0, len(res.AuthorityMatches))
	for aname, m := range res.AuthorityMatches {
		a := trust.AuthorityResult{Policy: c.name, Authority: aname, Static: m.Static}
		signer := func(s webhook.PolicySignature) {
			sg := trust.Signer{Issuer: s.Issuer, Subject: s.Subject}
			if sg.Subject == "" && sg.Issuer == "" {
				sg.KeyID = c.keyIDs[aname]
			}
			for _, have := range a.Signers {
				if have == sg {
					return
				}
			}
			a.Signers = append(a.Signers, sg)
		}
		for _, s := range m.Signatures {
			signer(s)
		}
		for _, atts := range m.Attestations {
			for _, at := range atts {
				signer(at.PolicySignature)
				if !contains(a.AttestationTypes, at.PredicateType) {
					a.AttestationTypes = append(a.AttestationTypes, at.PredicateType)
				}
			}
		}
		sort.Strings(a.AttestationTypes)
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Authority < out[j].Authority })
	return out
}

func describe(passed []trust.AuthorityResult) string {
	parts := make([]string, 0, len(passed))
	for _, a := range passed {
		var who []string
		for _, s := range a.Signers {
			if s.KeyID != "" {
				who = append(who, "key "+s.KeyID)
			} else {
				who = append(who, fmt.Sprintf("%s (issuer %s)", s.Subject, s.Issuer))
			}
		}
		if a.Static {
			who = append(who, "static pass")
		}
		if len(a.AttestationTypes) > 0 {
			who = append(who, "attestations "+strings.Join(a.AttestationTypes, ", "))
		}
		parts = append(parts, fmt.Sprintf("policy %s authority %s [%s]", a.Policy, a.Authority, strings.Join(who, "; ")))
	}
	return strings.Join(parts, ", ")
}

func usesPullSecrets(c *compiled) bool {
	for _, a := range c.cip.Authorities {
		for _, s := range a.Sources {
			if len(s.SignaturePullSecrets) > 0 {
				return true
			}
		}
	}
	return false
}

func shortDigest(ref name.Digest) string {
	return ref.Context().Name() + "@" + ref.DigestStr()
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// clip keeps condition messages readable; the cosign errors repeat the reference a lot.
func clip(s string) string {
	const limit = 2048
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "…"
}
