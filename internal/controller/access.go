package controller

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/access"
	"github.com/trainenv/trainenv/internal/reconcileerror"
	"github.com/trainenv/trainenv/internal/workload"
)

// Secrets are read with the uncached APIReader and written directly, never through the
// manager's cache: caching them, even filtered by label, needs list and watch on every
// Secret of the cluster. The operator needs only get and create.
const (
	// accessSecretRetry is how long to wait for a missing user Secret to be created.
	accessSecretRetry = 30 * time.Second
	// authorizedKeysRecheck is how often the authorized_keys Secret is read again for its
	// check and the fingerprints in status: it is not watched (see above), so an edit shows
	// in status within this period. The pod itself follows the Secret sooner (the kubelet
	// refreshes the volume, the entrypoint copies it for sshd), without a restart.
	authorizedKeysRecheck = 5 * time.Minute
)

// ensureAccess prepares what the pod needs for Jupyter and SSH before the workload is
// rendered: the generated token and host-key Secrets (created once, never rotated
// silently), the user's authorized_keys checked as sshd will read them, and status.access.
func (r *TrainingEnvironmentReconciler) ensureAccess(ctx context.Context, p *pass) error {
	te := p.te
	var st trainenvv1.AccessStatus
	defer func() {
		te.Status.Access = nil
		if st.SSH != nil || st.Jupyter != nil {
			te.Status.Access = &st
		}
	}()
	if workload.JupyterEnabled(te) {
		ref, err := r.ensureJupyterToken(ctx, te)
		if err != nil {
			return err
		}
		st.Jupyter = &trainenvv1.JupyterAccessStatus{TokenSecretRef: ref}
	}
	if !workload.SSHEnabled(te) {
		return nil
	}
	hostKeys, err := r.ensureOwnedSecret(ctx, te, workload.HostKeySecretName(te), access.GenerateHostKeys)
	if err != nil {
		return err
	}
	ssh, err := sshStatus(te, hostKeys)
	if err != nil {
		return err
	}
	st.SSH = ssh
	ssh.AuthorizedKeys, err = r.readAuthorizedKeys(ctx, p)
	return err
}

// ensureJupyterToken returns the Secret key of the Jupyter token, generating the Secret
// when the user named none, or checking that the named one exists (the pod could not
// start without it).
func (r *TrainingEnvironmentReconciler) ensureJupyterToken(ctx context.Context, te *trainenvv1.TrainingEnvironment) (trainenvv1.SecretKeyReference, error) {
	ref := workload.JupyterTokenRef(te)
	if te.Spec.Jupyter.TokenSecretRef == nil {
		_, err := r.ensureOwnedSecret(ctx, te, ref.Name, func() (map[string][]byte, error) {
			token, err := access.GenerateToken()
			return map[string][]byte{access.TokenKey: []byte(token)}, err
		})
		return ref, err
	}
	_, err := r.userSecretKey(ctx, te, ref, trainenvv1.ReasonJupyterTokenNotFound, "the Jupyter token", "spec.jupyter.tokenSecretRef")
	return ref, err
}

// readAuthorizedKeys reads and checks the user's authorized_keys, returning the keys'
// fingerprints.
func (r *TrainingEnvironmentReconciler) readAuthorizedKeys(ctx context.Context, p *pass) ([]string, error) {
	te := p.te
	// Re-read periodically in every outcome: an edit of the Secret starts no pass.
	p.requeueAfter(authorizedKeysRecheck)
	ref := workload.AuthorizedKeysRef(te)
	data, err := r.userSecretKey(ctx, te, ref, trainenvv1.ReasonAuthorizedKeysNotFound, "the SSH authorized_keys", "spec.ssh.authorizedKeysSecretRef")
	if err != nil {
		return nil, err
	}
	fingerprints, err := access.ParseAuthorizedKeys(data)
	if err != nil {
		msg := fmt.Sprintf("key %q of Secret %s is not a valid authorized_keys file: %v; fix the Secret (one OpenSSH public key per line)", ref.Key, ref.Name, err)
		return nil, reconcileerror.NewStalled(trainenvv1.ReasonInvalidAuthorizedKeys, "%s", msg)
	}
	return fingerprints, nil
}

// userSecretKey reads a key of a Secret the user manages. A missing Secret or key is
// waited for; the error's reason and message say what to create (the workload step puts
// them in WorkloadReady).
func (r *TrainingEnvironmentReconciler) userSecretKey(ctx context.Context, te *trainenvv1.TrainingEnvironment, ref trainenvv1.SecretKeyReference, reason, what, field string) ([]byte, error) {
	var s corev1.Secret
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: te.Namespace, Name: ref.Name}, &s)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, err
	}
	var msg string
	switch data, ok := s.Data[ref.Key]; {
	case err != nil:
		msg = fmt.Sprintf("Secret %q holding %s not found in namespace %s; create it or fix %s", ref.Name, what, te.Namespace, field)
	case !ok:
		msg = fmt.Sprintf("Secret %q has no key %q holding %s; add it or fix %s", ref.Name, ref.Key, what, field)
	default:
		return data, nil
	}
	return nil, reconcileerror.NewWaiting(accessSecretRetry, reason, "%s", msg)
}

// ensureOwnedSecret returns the environment's Secret name, creating it from generate when
// it does not exist. It is immutable and owned by the environment: generated once, never
// rotated behind the user's back, deleted with the environment.
func (r *TrainingEnvironmentReconciler) ensureOwnedSecret(ctx context.Context, te *trainenvv1.TrainingEnvironment, name string, generate func() (map[string][]byte, error)) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: te.Namespace, Name: name}, s)
	switch {
	case err == nil && !metav1.IsControlledBy(s, te):
		return nil, fmt.Errorf("Secret %s exists and is not owned by this TrainingEnvironment; rename one of them", name)
	case err == nil:
		return s, nil
	case !apierrors.IsNotFound(err):
		return nil, err
	}
	data, err := generate()
	if err != nil {
		return nil, fmt.Errorf("generating Secret %s: %w", name, err)
	}
	s = &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: te.Namespace, Labels: workload.Labels(te)},
		Type:       corev1.SecretTypeOpaque,
		Immutable:  ptr.To(true),
		Data:       data,
	}
	if err := controllerutil.SetControllerReference(te, s, r.Scheme()); err != nil {
		return nil, err
	}
	// AlreadyExists (a concurrent pass) is returned: the next pass reads the winner.
	if err := r.Create(ctx, s, FieldOwner); err != nil {
		return nil, err
	}
	r.event(te, corev1.EventTypeNormal, trainenvv1.ReasonCreatedSecret, "Create", "created Secret %s", name)
	return s, nil
}

// sshStatus is what clients need to trust the environment's host keys.
func sshStatus(te *trainenvv1.TrainingEnvironment, hostKeys *corev1.Secret) (*trainenvv1.SSHAccessStatus, error) {
	alias := workload.HostKeyAlias(te)
	fingerprints, err := hostKeyFingerprints(hostKeys.Data)
	if err != nil {
		return nil, fmt.Errorf("host-key Secret %s: %w (delete it to generate new keys)", hostKeys.Name, err)
	}
	knownHosts, err := access.KnownHostsLines([]string{alias}, hostKeys.Data)
	if err != nil {
		return nil, fmt.Errorf("host-key Secret %s: %w", hostKeys.Name, err)
	}
	return &trainenvv1.SSHAccessStatus{
		HostKeyAlias: alias, HostKeySecretName: hostKeys.Name, HostKeys: fingerprints, KnownHosts: strings.Join(knownHosts, "\n"),
	}, nil
}

// hostKeyFingerprints lists the served host keys as "TYPE SHA256:...", as ssh shows them.
func hostKeyFingerprints(data map[string][]byte) ([]string, error) {
	fps, err := access.Fingerprints(data)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(fps))
	for _, fp := range fps {
		out = append(out, fp.Type+" "+fp.SHA256)
	}
	return out, nil
}
