package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	kauth "github.com/google/go-containerregistry/pkg/authn/kubernetes"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/cuda"
	"github.com/trainenv/trainenv/internal/reconcileerror"
	"github.com/trainenv/trainenv/internal/registry"
)

// pullSecretRetry is how long to wait for a missing pull Secret to be created.
const pullSecretRetry = 30 * time.Second

type tagCheck struct {
	uid types.UID
	at  time.Time
}

// resolveImage pins spec.image to a digest. A new image (or platform) is resolved at once;
// a pinned tag is looked up again every followTagIntervalSeconds, to follow it (FollowTag)
// or to report that it moved (Pinned). A digest reference is never looked up again.
func (r *TrainingEnvironmentReconciler) resolveImage(ctx context.Context, p *pass) error {
	te := p.te
	p.keychain = r.keychain(ctx, te)
	ref, err := registry.ParseReference(te.Spec.Image)
	if err != nil {
		setImageResolved(te, metav1.ConditionFalse, trainenvv1.ReasonInvalidReference,
			fmt.Sprintf("%v; fix spec.image", err))
		return reconcileerror.NewStalled(trainenvv1.ReasonInvalidReference, "%v", err)
	}
	pinned := te.Status.Image
	isNew := pinned == nil || pinned.Requested != te.Spec.Image || pinned.Platform != te.Spec.Platform
	interval := time.Duration(te.Spec.FollowTagIntervalSeconds) * time.Second
	if !isNew {
		p.pinned = pinned.Resolved
		if registry.IsDigest(ref) {
			return nil
		}
		if wait := r.untilTagCheck(te, interval); wait > 0 {
			p.requeueAfter(wait)
			return nil
		}
	}

	secrets, err := r.pullSecrets(ctx, te)
	var missing *missingPullSecretError
	switch {
	case errors.As(err, &missing) && !isNew:
		return r.tagCheckFailed(p, missing.Error(), interval)
	case errors.As(err, &missing):
		setImageResolved(te, metav1.ConditionFalse, trainenvv1.ReasonPullSecretNotFound, missing.Error())
		return reconcileerror.NewWaiting(pullSecretRetry, trainenvv1.ReasonPullSecretNotFound, "%s", missing.Error())
	case err != nil:
		return err
	}
	// One keychain for the resolution and the verification of this pass.
	keychain, err := kauth.NewFromPullSecrets(ctx, secrets)
	if err != nil {
		return fmt.Errorf("reading the pull Secrets of %s: %w", te.Name, err)
	}
	p.keychain = keychain
	lookup := func(ctx context.Context) (registry.Resolution, error) {
		return r.Resolver.Resolve(ctx, registry.Request{Image: te.Spec.Image, Platform: te.Spec.Platform, Keychain: keychain})
	}
	var res registry.Resolution
	if len(secrets) == 0 && !registry.IsDigest(ref) {
		res, err = r.tags.resolve(ctx, te.Spec.Image+"|"+te.Spec.Platform, r.Clock.Now(), lookup)
	} else {
		res, err = lookup(ctx)
	}
	if err != nil {
		return r.resolveFailed(ctx, p, isNew, err, interval)
	}
	r.tagChecked.Store(client.ObjectKeyFromObject(te), tagCheck{uid: te.UID, at: r.Clock.Now()})
	if !registry.IsDigest(ref) {
		p.requeueAfter(interval)
	}

	switch {
	case isNew:
		r.pin(p, res)
	case te.Spec.UpdatePolicy == trainenvv1.UpdatePolicyFollowTag && res.Digest != pinned.Digest:
		// The new digest replaces the pinned one only once it is verified (verify step).
		p.candidate = &res
	case res.TargetDigest != pinnedTarget(pinned):
		if pinned.LatestDigest != res.TargetDigest {
			r.event(te, corev1.EventTypeWarning, trainenvv1.ReasonTagMoved, "Check",
				"tag %s moved to %s; the environment stays on %s (updatePolicy Pinned)", te.Spec.Image, res.TargetDigest, pinned.Digest)
		}
		pinned.LatestDigest = res.TargetDigest
		setImageResolved(te, metav1.ConditionTrue, trainenvv1.ReasonTagMoved, fmt.Sprintf(
			"tag %s now points at %s; this environment stays pinned to %s because updatePolicy is Pinned. "+
				"To move to the new image, set updatePolicy: FollowTag or recreate the environment",
			te.Spec.Image, res.TargetDigest, pinned.Digest))
	default:
		pinned.LatestDigest = ""
		setImageResolved(te, metav1.ConditionTrue, trainenvv1.ReasonResolved, resolvedMessage(te))
	}
	p.pinned = te.Status.Image.Resolved
	return nil
}

// pin records a new resolution in status. Its event waits for the end of the pass
// (announcePin): a pass that goes on to create the workload says both in one event.
func (r *TrainingEnvironmentReconciler) pin(p *pass, res registry.Resolution) {
	te := p.te
	te.Status.Image = &trainenvv1.ImageStatus{
		Requested:   te.Spec.Image,
		Resolved:    res.Pinned(),
		Digest:      res.Digest,
		IndexDigest: res.IndexDigest,
		Platform:    te.Spec.Platform,
		ResolvedAt:  metav1.NewTime(r.Clock.Now()),
		// Read once, at pin time: the config of a digest never changes.
		CUDARequirements: imageRequirements(res.Config.Env),
	}
	te.Status.ShortDigest = registry.ShortDigest(res.Digest)
	setImageResolved(te, metav1.ConditionTrue, trainenvv1.ReasonResolved, resolvedMessage(te))
	p.pinNote = fmt.Sprintf("pinned %s to %s", te.Spec.Image, res.Pinned())
}

// announcePin records the Resolved event of a pin no CreatedWorkload event has told.
func (r *TrainingEnvironmentReconciler) announcePin(p *pass) {
	if p.pinNote != "" {
		r.event(p.te, corev1.EventTypeNormal, trainenvv1.ReasonResolved, "Resolve", "%s", p.pinNote)
		p.pinNote = ""
	}
}

// imageRequirements are what the image declares: its NVIDIA_REQUIRE_* variables as the
// container toolkit reads them, and the compute capabilities its PyTorch has kernels for.
func imageRequirements(env []string) []string {
	values := cuda.ImageRequirementValues(env)
	if arch, ok := cuda.TorchArchRequirement(env); ok {
		values = append(values, arch)
	}
	return values
}

func resolvedMessage(te *trainenvv1.TrainingEnvironment) string {
	return fmt.Sprintf("%s is pinned to %s", te.Spec.Image, te.Status.Image.Resolved)
}

// pinnedTarget is the digest the tag pointed at when pinned: the index for multi-platform images.
func pinnedTarget(s *trainenvv1.ImageStatus) string {
	if s.IndexDigest != "" {
		return s.IndexDigest
	}
	return s.Digest
}

// resolveFailed reports a registry failure. Before anything is pinned it fails the
// condition and returns the error for backoff (nothing may start). Once pinned, a failed
// re-check is reported (tagCheckFailed) and changes nothing else.
func (r *TrainingEnvironmentReconciler) resolveFailed(ctx context.Context, p *pass, isNew bool, err error, interval time.Duration) error {
	te := p.te
	if !isNew {
		log.FromContext(ctx).Info("tag check failed; keeping the pinned digest", "image", te.Spec.Image, "error", err.Error())
		return r.tagCheckFailed(p, err.Error(), interval)
	}
	reason := map[registry.Kind]string{
		registry.KindNotFound:         trainenvv1.ReasonImageNotFound,
		registry.KindUnauthorized:     trainenvv1.ReasonRegistryUnauthorized,
		registry.KindUnavailable:      trainenvv1.ReasonRegistryUnavailable,
		registry.KindPlatformNotFound: trainenvv1.ReasonPlatformNotFound,
	}[registry.KindOf(err)]
	hint := map[string]string{
		trainenvv1.ReasonImageNotFound:        "check the repository and tag in spec.image",
		trainenvv1.ReasonRegistryUnauthorized: "check spec.imagePullSecrets: the registry refused the credentials",
		trainenvv1.ReasonRegistryUnavailable:  "the registry could not be reached; retrying with backoff",
		trainenvv1.ReasonPlatformNotFound:     "set spec.platform to one the image provides",
	}[reason]
	msg := fmt.Sprintf("resolving %s: %v (%s)", te.Spec.Image, err, hint)
	if changed := setImageResolved(te, metav1.ConditionFalse, reason, msg); changed {
		r.event(te, corev1.EventTypeWarning, reason, "Resolve", "%s", msg)
	}
	if reason == trainenvv1.ReasonPlatformNotFound {
		return reconcileerror.NewStalled(reason, "%s", msg)
	}
	return fmt.Errorf("%s", msg)
}

// pinIfVerified pins the tag's new digest (FollowTag) if it is verified, or reports in
// ImageResolved that it was refused and keeps the running digest. The verify step calls it
// before it verifies the pinned digest.
func (r *TrainingEnvironmentReconciler) pinIfVerified(ctx context.Context, p *pass) error {
	te, cand := p.te, *p.candidate
	verdict, err := r.verify(ctx, p, cand.Pinned())
	if err != nil {
		return err
	}
	if verdict.Allowed() {
		r.pin(p, cand)
		p.pinned = te.Status.Image.Resolved
		return nil
	}
	msg := fmt.Sprintf("tag %s moved to %s, which failed verification (%s: %s); the environment stays on %s",
		te.Spec.Image, cand.TargetDigest, verdict.Reason, verdict.Message, te.Status.Image.Digest)
	if te.Status.Image.LatestDigest != cand.TargetDigest {
		r.event(te, corev1.EventTypeWarning, trainenvv1.ReasonTagMoved, "Verify", "%s", msg)
	}
	te.Status.Image.LatestDigest = cand.TargetDigest
	setImageResolved(te, metav1.ConditionTrue, trainenvv1.ReasonTagMoved, msg)
	return nil
}

// setImageResolved is the only writer of the ImageResolved condition.
func setImageResolved(te *trainenvv1.TrainingEnvironment, status metav1.ConditionStatus, reason, message string) bool {
	return setCondition(te, trainenvv1.ConditionImageResolved, status, reason, message)
}

// tagCheckFailed reports a failed periodic look-up of a pinned tag (registry error, pull
// Secret gone) without disturbing the environment: it keeps its pinned, verified digest and
// ImageResolved stays True, with reason TagCheckFailed and what failed; one Warning event per
// new failure. The tag is looked up again after the interval.
func (r *TrainingEnvironmentReconciler) tagCheckFailed(p *pass, why string, interval time.Duration) error {
	te := p.te
	r.tagChecked.Store(client.ObjectKeyFromObject(te), tagCheck{uid: te.UID, at: r.Clock.Now()})
	p.requeueAfter(interval)
	msg := fmt.Sprintf("%s is pinned and keeps running %s; the last tag check failed: %s. The tag is looked up again every %s",
		te.Spec.Image, te.Status.Image.Resolved, why, interval)
	if setImageResolved(te, metav1.ConditionTrue, trainenvv1.ReasonTagCheckFailed, msg) {
		r.event(te, corev1.EventTypeWarning, trainenvv1.ReasonTagCheckFailed, "Check", "tag check of %s failed: %s; the environment keeps its pinned digest", te.Spec.Image, why)
	}
	return nil
}

// untilTagCheck returns how long until the tag is due to be looked up again (0: now).
func (r *TrainingEnvironmentReconciler) untilTagCheck(te *trainenvv1.TrainingEnvironment, interval time.Duration) time.Duration {
	v, ok := r.tagChecked.Load(client.ObjectKeyFromObject(te))
	if !ok || v.(tagCheck).uid != te.UID {
		return 0
	}
	wait := interval - r.Clock.Since(v.(tagCheck).at)
	if wait < 0 {
		return 0
	}
	return wait
}

// keychain returns a keychain of the environment's pull secrets that reads them only when
// a registry asks for credentials: a verification answered from cache costs no API read.
func (r *TrainingEnvironmentReconciler) keychain(ctx context.Context, te *trainenvv1.TrainingEnvironment) authn.Keychain {
	return &lazyKeychain{load: func() (authn.Keychain, error) {
		secrets, err := r.pullSecrets(ctx, te)
		if err != nil {
			return nil, err
		}
		return kauth.NewFromPullSecrets(ctx, secrets)
	}}
}

type lazyKeychain struct {
	once sync.Once
	load func() (authn.Keychain, error)
	kc   authn.Keychain
	err  error
}

func (k *lazyKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	k.once.Do(func() { k.kc, k.err = k.load() })
	if k.err != nil {
		return nil, k.err
	}
	return k.kc.Resolve(res)
}

// pullSecrets reads spec.imagePullSecrets with the uncached reader.
func (r *TrainingEnvironmentReconciler) pullSecrets(ctx context.Context, te *trainenvv1.TrainingEnvironment) ([]corev1.Secret, error) {
	secrets := make([]corev1.Secret, 0, len(te.Spec.ImagePullSecrets))
	for _, ref := range te.Spec.ImagePullSecrets {
		var s corev1.Secret
		if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: te.Namespace, Name: ref.Name}, &s); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, &missingPullSecretError{name: ref.Name, namespace: te.Namespace}
			}
			return nil, err
		}
		secrets = append(secrets, s)
	}
	return secrets, nil
}

// missingPullSecretError is an imagePullSecrets entry naming a Secret that does not exist.
type missingPullSecretError struct{ name, namespace string }

func (e *missingPullSecretError) Error() string {
	return fmt.Sprintf("image pull Secret %q not found in namespace %s; create it or fix spec.imagePullSecrets", e.name, e.namespace)
}
