// Package policy verifies pinned image digests against sigstore policy-controller's
// ClusterImagePolicies, in-process, with policy-controller's own engine
// (webhook.ValidatePolicy) and its own image matching, so that trainenv reaches the
// verdict the policy-controller admission webhook would reach for the same digest.
//
// Differences from the webhook, on purpose: an image no policy matches is never trusted
// (fail closed) unless Options.AllowUnmatched is set; a registry failure is an error to
// retry rather than a verdict; policies that select resources by `match:` are compared
// with Options.Resources (a StatefulSet and its Pod by default); and a CIP-level policy
// with includeSpec, includeObjectMeta or includeTypeMeta sees no object, because trainenv
// verifies before it creates one.
package policy

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/policy-controller/pkg/apis/config"
	webhookcip "github.com/sigstore/policy-controller/pkg/webhook/clusterimagepolicy"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/metrics"
	"github.com/trainenv/trainenv/internal/registry"
	"github.com/trainenv/trainenv/internal/trust"
)

// Options tune a Verifier. The zero value is the production default.
type Options struct {
	// AllowUnmatched lets an image that no policy covers run, with status Unknown and a
	// message saying so. For development clusters only; off by default (fail closed).
	AllowUnmatched bool
	// ReverifyInterval is how long a passing verdict is reused (default 10 minutes). It
	// bounds how long a deleted signature or rotated Secret key goes unnoticed.
	ReverifyInterval time.Duration
	// FailureTTL is how long a failing verdict is reused (default 30 seconds).
	FailureTTL time.Duration
	// Timeout bounds one evaluation of all matching policies, every registry request
	// included (default 10 seconds), so that a registry that stops answering cannot pin a
	// reconcile worker. An evaluation that runs out is an error, retried with backoff.
	Timeout time.Duration
	// Limits cap what a registry may make the verifier read: manifest and blob sizes,
	// and signatures or attestations per digest (registry.Limits' defaults).
	Limits registry.Limits
	// Resources are the objects that policies with `match:` are compared with: what
	// trainenv creates for an environment, by default a StatefulSet (apps/v1) and its Pod
	// (v1), without labels. A policy that matches any of them applies, as the webhook
	// would check each of them at admission.
	Resources []Resource
	// KubeClient reads the signaturePullSecrets that policy sources may name. Without it
	// a policy using them is reported invalid.
	KubeClient kubernetes.Interface
	// Logger receives policy-controller's engine logs (default: discarded; the verdict
	// carries every failure).
	Logger *zap.SugaredLogger
	// Transport is the base HTTP transport to registries (default remote.DefaultTransport);
	// its requests are counted in the registry metrics as operation verify.
	Transport http.RoundTripper
	// MaxEntries bounds the verdict cache (default 4096).
	MaxEntries int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Notation supplies the Notation trust policy and trust stores (see notation.go);
	// nil: Notation signatures are not verified.
	Notation NotationSource
	// RevocationTransport reaches the CRL distribution points and OCSP responders named
	// by Notation signing certificates (default http.DefaultTransport); each request is
	// also bounded by Timeout.
	RevocationTransport http.RoundTripper
}

// DefaultTimeout is the default time budget of one verification.
const DefaultTimeout = 10 * time.Second

// Resource is what a policy's `match:` resource selector is compared with.
type Resource struct {
	Kind, APIVersion string
	Labels           map[string]string
}

// Verifier implements trust.Verifier with ClusterImagePolicies.
type Verifier struct {
	opts     Options
	store    *store
	notation *notationStore
	cache    *cache
	matches  matchMemo
	flight   singleflight.Group
}

var _ trust.Verifier = (*Verifier)(nil)

// New returns a Verifier reading policies from src.
func New(src PolicySource, opts Options) *Verifier {
	if opts.ReverifyInterval <= 0 {
		opts.ReverifyInterval = 10 * time.Minute
	}
	if opts.FailureTTL <= 0 {
		opts.FailureTTL = 30 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if len(opts.Resources) == 0 {
		opts.Resources = []Resource{{Kind: "StatefulSet", APIVersion: "apps/v1"}, {Kind: "Pod", APIVersion: "v1"}}
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop().Sugar()
	}
	if opts.Transport == nil {
		opts.Transport = remote.DefaultTransport
	}
	opts.Transport = registry.Instrument(registry.LimitTransport(opts.Transport, opts.Limits), registry.OperationVerify)
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 4096
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RevocationTransport == nil {
		opts.RevocationTransport = http.DefaultTransport
	}
	return &Verifier{
		opts:  opts,
		store: &store{src: src, refresh: opts.ReverifyInterval, retry: opts.FailureTTL, now: opts.Now, policies: map[string]storedPolicy{}, roots: map[string]storedRoot{}},
		// The Notation ConfigMap is read again at most every FailureTTL (one GET), so a
		// changed trust store or policy is seen as soon as a fixed ClusterImagePolicy is.
		notation: &notationStore{src: opts.Notation, refresh: opts.FailureTTL, now: opts.Now,
			revocation: &http.Client{Transport: opts.RevocationTransport, Timeout: opts.Timeout}},
		cache: newCache(opts.MaxEntries, opts.Now),
	}
}

// Verify implements trust.Verifier. Verdicts may come from the cache and share their
// slices with it: callers must not modify them.
func (v *Verifier) Verify(ctx context.Context, req trust.Request) (trust.Verdict, error) {
	ref, err := name.NewDigest(req.Image)
	if err != nil {
		return deny(trainenvv1.ReasonVerificationFailed, fmt.Sprintf("only a pinned digest can be verified: %v", err)), nil
	}
	all, err := v.store.current(ctx)
	if err != nil {
		return trust.Verdict{Status: metav1.ConditionUnknown, Reason: trainenvv1.ReasonPolicyUnavailable,
			Message: fmt.Sprintf("reading ClusterImagePolicies: %v", err)}, err
	}
	matching, err := v.match(ref, all)
	if err != nil {
		return invalid(ref, matching, err), nil
	}
	nt, err := v.notation.current(ctx)
	if err != nil {
		return trust.Verdict{Status: metav1.ConditionUnknown, Reason: trainenvv1.ReasonPolicyUnavailable, Message: err.Error()}, err
	}
	if nt != nil && nt.err != nil {
		return invalid(ref, matching, nt.err), nil
	}
	nc := notationCheck{trust: nt, statement: nt.statement(ref)}
	if len(matching) == 0 && nc.statement == nil {
		return v.unmatched(ref), nil
	}
	var trustRoots []string
	for _, c := range matching {
		trustRoots = append(trustRoots, c.trustRoots...)
	}
	keys, rootVersions, err := v.store.sigstoreKeys(ctx, trustRoots)
	if err != nil {
		if isInvalid(err) {
			return invalid(ref, matching, err), nil
		}
		return trust.Verdict{Status: metav1.ConditionUnknown, Reason: trainenvv1.ReasonPolicyUnavailable, Message: err.Error()}, err
	}
	key := cacheKey(ref, matching, rootVersions)
	if nc.statement != nil {
		key += "|" + notationPolicyPrefix + nc.statement.Name + "=" + nt.version
	}
	if verdict, ok := v.cache.get(key); ok {
		metrics.VerificationCacheLookups.WithLabelValues("hit").Inc()
		return verdict, nil
	}
	metrics.VerificationCacheLookups.WithLabelValues("miss").Inc()
	run := func() (any, error) {
		// The evaluation is shared by every caller waiting on this key, so one caller
		// giving up must not cancel it for the others.
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.opts.Timeout)
		defer cancel()
		start := time.Now()
		verdict, err := v.evaluate(ectx, ref, req, matching, keys, nc)
		metrics.VerificationDuration.WithLabelValues(metrics.Result(verdict.Allowed(), err)).Observe(time.Since(start).Seconds())
		v.cache.put(key, verdict, err, v.ttl(verdict, err))
		return verdict, err
	}
	res, err, shared := v.flight.Do(key, run)
	if shared && err != nil && res.(trust.Verdict).Reason == trainenvv1.ReasonRegistryUnauthorized {
		// The shared evaluation ran with another environment's pull secrets; a refusal
		// of those says nothing about this caller's, so try with its own.
		res, err = run()
	}
	return res.(trust.Verdict), err
}

// ttl decides how long a verdict is reused.
//
//   - Passing verdicts: ReverifyInterval (10 min). A digest's signatures rarely change, and
//     N environments of one image then cost one verification per interval; the interval
//     bounds how long a deleted signature keeps passing.
//   - Failing verdicts (no signature, untrusted signer, ...): FailureTTL (30 s). The same
//     digest and policies give the same answer, so a crash-looping or mass-created set of
//     environments must not hammer the registry; but the usual fix is signing the image
//     seconds after it was pushed, and that must be seen quickly. (The reconciler stalls on
//     a failure and re-verifies when the environment or a policy changes; the key holds
//     every policy generation, so a policy fix is seen at once.)
//   - Errors (registry or transparency log unreachable, timeouts): never. They say
//     nothing about the digest, and the caller's backoff must reach the registry again.
//   - A passing verdict whose scan ages out sooner (ExpiresAt) is kept only until then.
func (v *Verifier) ttl(verdict trust.Verdict, err error) time.Duration {
	switch {
	case err != nil:
		return 0
	case verdict.Allowed() && !verdict.ExpiresAt.IsZero():
		return min(v.opts.ReverifyInterval, max(verdict.ExpiresAt.Sub(v.opts.Now()), 0))
	case verdict.Allowed():
		return v.opts.ReverifyInterval
	default:
		return v.opts.FailureTTL
	}
}

// match returns the compiled policies that cover ref, with policy-controller's own glob
// and resource matching. A matching policy that is invalid is an error.
func (v *Verifier) match(ref name.Digest, all []*compiled) ([]*compiled, error) {
	var out []*compiled
	var invalid []string
	for _, c := range all {
		matched, err := v.matches.get(c, ref.Name(), func() (bool, error) {
			one := config.ImagePolicyConfig{Policies: map[string]webhookcip.ClusterImagePolicy{c.name: c.cip}}
			for _, r := range v.opts.Resources {
				m, err := one.GetMatchingPolicies(ref.Name(), r.Kind, r.APIVersion, r.Labels)
				if err != nil || len(m) > 0 {
					return len(m) > 0, err
				}
			}
			return false, nil
		})
		if err != nil && c.err == nil {
			c = &compiled{name: c.name, version: c.version, err: fmt.Errorf("%w %s: %w", errInvalid, c.name, err)}
		}
		if !matched && err == nil {
			continue
		}
		out = append(out, c)
		if c.err != nil {
			invalid = append(invalid, c.err.Error())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	if len(invalid) > 0 {
		return out, fmt.Errorf("%s", strings.Join(invalid, "; "))
	}
	return out, nil
}

func (v *Verifier) unmatched(ref name.Digest) trust.Verdict {
	if v.opts.AllowUnmatched {
		return trust.Verdict{Status: metav1.ConditionUnknown, Reason: trainenvv1.ReasonUnmatchedAllowed, Digest: ref.String(),
			Message: fmt.Sprintf("NOT VERIFIED: no ClusterImagePolicy covers %s; it runs only because this operator allows unmatched images (a development setting: turn it off in production)", ref.Context().Name())}
	}
	return trust.Verdict{Status: metav1.ConditionFalse, Reason: trainenvv1.ReasonNoMatchingPolicy, Digest: ref.String(),
		Message: fmt.Sprintf("no ClusterImagePolicy covers %s, so it is not trusted; ask the platform team to add a policy whose images[].glob matches it (or a Notation trust policy statement whose registryScopes names it)", ref.Context().Name())}
}

func invalid(ref name.Digest, matching []*compiled, err error) trust.Verdict {
	return trust.Verdict{Status: metav1.ConditionFalse, Reason: trainenvv1.ReasonInvalidPolicy, Digest: ref.String(), Policies: names(matching),
		Message: fmt.Sprintf("cannot verify %s: %v; fix the policy", ref.Context().Name(), err)}
}

func deny(reason, message string) trust.Verdict {
	return trust.Verdict{Status: metav1.ConditionFalse, Reason: reason, Message: message}
}

func names(cs []*compiled) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.name)
	}
	return out
}

// cacheKey holds the digest and every matching policy's (and trust root's) version, so a
// cached verdict is only ever reused for exactly the policies it was computed under.
func cacheKey(ref name.Digest, matching []*compiled, rootVersions []string) string {
	var b strings.Builder
	b.WriteString(ref.String())
	for _, c := range matching {
		b.WriteString("|" + c.name + "=" + c.version)
	}
	for _, r := range rootVersions {
		b.WriteString("|" + r)
	}
	return b.String()
}
