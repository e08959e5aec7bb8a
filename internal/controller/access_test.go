package controller_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/access"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/workload"
)

// authorizedKey returns a fresh public key line in authorized_keys format.
func authorizedKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(ssh.MarshalAuthorizedKey(key))
}

func withAccess(te *trainenvv1.TrainingEnvironment) {
	te.Spec.Jupyter = &trainenvv1.JupyterSpec{Enabled: true}
	te.Spec.SSH = &trainenvv1.SSHSpec{Enabled: true, AuthorizedKeysSecretRef: &trainenvv1.SecretKeyReference{Name: te.Name + "-keys"}}
}

func (f *fixture) secret(name string) *corev1.Secret {
	f.t.Helper()
	s := &corev1.Secret{}
	if err := k8s.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: name}, s); err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fixture) putSecret(name string, data map[string]string) {
	f.t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns}, StringData: data}
	if err := k8s.Create(f.ctx, s); err != nil {
		if err := k8s.Delete(f.ctx, s); err != nil {
			f.t.Fatal(err)
		}
		if err := k8s.Create(f.ctx, s); err != nil {
			f.t.Fatal(err)
		}
	}
}

func TestAccessSecretsAreGeneratedOnceAndPublishedInStatus(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	key := authorizedKey(t)
	f.putSecret("acc-keys", map[string]string{"authorized_keys": "# alice\n" + key})
	te := f.pinnedOnNode("acc", withAccess)

	token := f.secret("acc-jupyter")
	g.Expect(string(token.Data["token"])).To(MatchRegexp(`^[A-Za-z0-9_-]{43}$`))
	hostKeys := f.secret("acc-ssh-host-keys")
	for _, s := range []*corev1.Secret{token, hostKeys} {
		g.Expect(metav1.IsControlledBy(s, te)).To(BeTrue(), s.Name)
		g.Expect(*s.Immutable).To(BeTrue(), s.Name)
		g.Expect(s.Labels).To(HaveKeyWithValue(workload.LabelEnvironment, "acc"))
	}

	served, err := access.Fingerprints(hostKeys.Data)
	g.Expect(err).NotTo(HaveOccurred())
	var fps []string
	for _, fp := range served {
		fps = append(fps, fp.Type+" "+fp.SHA256)
	}
	g.Expect(te.Status.Access).NotTo(BeNil())
	g.Expect(te.Status.Access.SSH.HostKeys).To(Equal(fps))
	g.Expect(te.Status.Access.SSH.HostKeyAlias).To(Equal("trainenv." + f.ns + ".acc"))
	g.Expect(te.Status.Access.SSH.KnownHosts).To(HavePrefix("trainenv." + f.ns + ".acc ssh-ed25519 "))
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(key))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te.Status.Access.SSH.AuthorizedKeys).To(Equal([]string{ssh.FingerprintSHA256(pub)}))
	g.Expect(te.Status.Access.Jupyter.TokenSecretRef).To(Equal(trainenvv1.SecretKeyReference{Name: "acc-jupyter", Key: "token"}))

	np := &networkingv1.NetworkPolicy{}
	g.Expect(k8s.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "acc"}, np)).To(Succeed())
	g.Expect(np.Spec.Ingress).To(BeEmpty())

	// The rendered pod, with its Secret volumes and read-only root, is admitted by the real
	// API server in a namespace enforcing Pod Security "restricted".
	pod := f.podFor(te, "acc-a100")
	g.Expect(pod.Spec.Containers[0].Command).To(Equal([]string{workload.EntrypointPath}))

	// Later passes, and a replaced pod, keep the same token and host keys.
	g.Expect(k8s.Delete(f.ctx, pod)).To(Succeed())
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.secret("acc-jupyter").Data).To(Equal(token.Data))
	g.Expect(f.secret("acc-ssh-host-keys").ResourceVersion).To(Equal(hostKeys.ResourceVersion))
	g.Expect(te.Status.Access.SSH.HostKeys).To(Equal(fps))
}

func TestMissingAndInvalidAuthorizedKeysHoldTheWorkload(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	te := f.pinnedOnNode("keys", withAccess)

	g.Expect(te).To(haveCondition(trainenvv1.ConditionWorkloadReady, metav1.ConditionFalse, trainenvv1.ReasonAuthorizedKeysNotFound))
	g.Expect(te).To(haveCondition(trainenvv1.ConditionReady, metav1.ConditionFalse, trainenvv1.ReasonAuthorizedKeysNotFound))
	g.Expect(condition(te, trainenvv1.ConditionReady).Message).To(ContainSubstring(`Secret "keys-keys" holding the SSH authorized_keys not found`))
	g.Expect(te.Status.Phase).To(Equal(trainenvv1.PhasePending))
	_, err := f.statefulSet(te)
	g.Expect(err).To(HaveOccurred(), "no pod may start without its authorized_keys")
	g.Expect(te.Status.Access.SSH.HostKeys).To(HaveLen(len(access.ServedHostKeyFiles)), "host keys are published while waiting")

	f.putSecret("keys-keys", map[string]string{"id.pub": authorizedKey(t)})
	res, err, te := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.RequeueAfter).To(Equal(30 * time.Second))
	g.Expect(condition(te, trainenvv1.ConditionWorkloadReady).Message).To(ContainSubstring(`has no key "authorized_keys"`))

	f.putSecret("keys-keys", map[string]string{"authorized_keys": "ssh-ed25519 AAAAnot-a-key alice\n"})
	res, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionWorkloadReady, metav1.ConditionFalse, trainenvv1.ReasonInvalidAuthorizedKeys))
	g.Expect(condition(te, trainenvv1.ConditionWorkloadReady).Message).To(ContainSubstring("line 1:"))
	g.Expect(te.Status.Phase).To(Equal(trainenvv1.PhaseFailed))
	g.Expect(res.RequeueAfter).To(Equal(5*time.Minute), "the Secret is not watched: a fix is noticed by re-reading it")

	f.putSecret("keys-keys", map[string]string{"authorized_keys": authorizedKey(t)})
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	sts, err := f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())

	// A new key leaves the workload alone (the entrypoint follows the mounted Secret in
	// the running pod: a restart would kill training); status names the keys now allowed.
	added := authorizedKey(t)
	f.putSecret("keys-keys", map[string]string{"authorized_keys": added})
	res, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	again, err := f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(again.ResourceVersion).To(Equal(sts.ResourceVersion), "no StatefulSet write: the pod is not restarted")
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(added))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te.Status.Access.SSH.AuthorizedKeys).To(Equal([]string{ssh.FingerprintSHA256(pub)}))
	g.Expect(res.RequeueAfter).To(Equal(5*time.Minute), "re-read for status")

	// An invalid edit is still reported, with the pod left running.
	f.putSecret("keys-keys", map[string]string{"authorized_keys": added + "ssh-ed25519 AAAAbroken bob\n"})
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionWorkloadReady, metav1.ConditionFalse, trainenvv1.ReasonInvalidAuthorizedKeys))
	g.Expect(condition(te, trainenvv1.ConditionWorkloadReady).Message).To(ContainSubstring("line 2:"))
	again, err = f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(*again.Spec.Replicas).To(BeEquivalentTo(1))
}

func TestUserJupyterTokenIsReferencedNotGenerated(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	te := f.pinnedOnNode("tok", func(te *trainenvv1.TrainingEnvironment) {
		te.Spec.Jupyter = &trainenvv1.JupyterSpec{Enabled: true, TokenSecretRef: &trainenvv1.SecretKeyReference{Name: "mine", Key: "t"}}
	})
	g.Expect(te).To(haveCondition(trainenvv1.ConditionWorkloadReady, metav1.ConditionFalse, trainenvv1.ReasonJupyterTokenNotFound))

	f.putSecret("mine", map[string]string{"t": strings.Repeat("x", 48)})
	_, err, te := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te.Status.Access.Jupyter.TokenSecretRef).To(Equal(trainenvv1.SecretKeyReference{Name: "mine", Key: "t"}))
	g.Expect(k8s.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "tok-jupyter"}, &corev1.Secret{})).NotTo(Succeed())
	g.Expect(te.Status.Connect).To(BeEmpty(), "not ready yet")
}

func TestForeignSecretWithTheGeneratedNameIsNotTaken(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	f.putSecret("foreign-jupyter", map[string]string{"token": "someone else's"})
	reg := registrytest.New(t)
	reg.Push("team/pytorch", "2.4", registrytest.Image(t))
	te := f.create("foreign", reg.Host+"/team/pytorch:2.4", func(te *trainenvv1.TrainingEnvironment) {
		te.Spec.Jupyter = &trainenvv1.JupyterSpec{Enabled: true}
		te.Spec.GPU = nil
	})
	_, err := f.r.Reconcile(f.ctx, reconcileRequest(te))
	g.Expect(err).To(MatchError(ContainSubstring("Secret foreign-jupyter exists and is not owned")))
	g.Expect(string(f.secret("foreign-jupyter").Data["token"])).To(Equal("someone else's"))
}
