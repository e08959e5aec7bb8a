package controller_test

import (
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	. "github.com/onsi/gomega"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/testutil/sigstoretest"
	"github.com/trainenv/trainenv/internal/trust/policy"
)

const (
	ciIssuer  = "https://token.ci.trainenv.test"
	ciSubject = "https://git.trainenv.test/ml/images/.ci/release.yml@refs/heads/main"
)

// keylessTrust is a private Sigstore whose TrustRoot and keyless ClusterImagePolicy (for
// ciIssuer and ciSubject, covering the registry's team/ images) are in the API server.
type keylessTrust struct {
	ss  *sigstoretest.Sigstore
	reg *registrytest.Registry
}

func newKeylessTrust(f *fixture) keylessTrust {
	f.t.Helper()
	reg := registrytest.New(f.t)
	ss := sigstoretest.New(f.t)
	root := ss.TrustRoot(f.t, "private-sigstore-"+f.ns)
	root.UID, root.Generation = "", 0
	cip := &pcv1alpha1.ClusterImagePolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "ci-keyless-" + f.ns},
		Spec: pcv1alpha1.ClusterImagePolicySpec{
			Images: []pcv1alpha1.ImagePattern{{Glob: reg.Host + "/team/**"}},
			Authorities: []pcv1alpha1.Authority{{Name: "ci", Keyless: &pcv1alpha1.KeylessRef{
				URL: sigstoretest.FulcioURL, TrustRootRef: root.Name,
				Identities: []pcv1alpha1.Identity{{Issuer: ciIssuer, Subject: ciSubject}},
			}}},
		},
	}
	for _, obj := range []client.Object{root, cip} {
		if err := k8s.Create(f.ctx, obj); err != nil {
			f.t.Fatal(err)
		}
		f.t.Cleanup(func() { _ = k8s.Delete(f.ctx, obj) })
	}
	f.r.Verifier = policy.New(&policy.APISource{Policies: k8s, Refs: k8s}, policy.Options{Now: f.clock.Now})
	return keylessTrust{ss: ss, reg: reg}
}

// push pushes a new image as team/<repo>:1 and, if signer is not empty, signs its digest
// keyless as signer (an identity authenticated by ciIssuer).
func (k keylessTrust) push(t *testing.T, repo, signer string) string {
	t.Helper()
	img := k.reg.Host + "/team/" + repo
	digest := k.reg.Push("team/"+repo, "1", registrytest.Image(t))
	if signer != "" {
		k.ss.Sign(t, img+"@"+digest, k.ss.Issue(t, sigstoretest.Identity{Issuer: ciIssuer, Subject: signer}))
	}
	return img + ":1"
}

// Keyless end to end: the TrustRoot and the policy are real API objects, the signatures
// carry certificates of the private CA. The right identity runs and status names it; a
// certificate for another subject gets no workload.
func TestKeylessIdentityDecidesWhatRuns(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	k := newKeylessTrust(f)
	f.gpuNode("keyless-a100")

	te := f.create("ci-built", k.push(t, "ci-built", ciSubject))
	_, err, te := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionVerified, metav1.ConditionTrue, trainenvv1.ReasonVerified))
	g.Expect(te.Status.Verification.Authorities).To(HaveLen(1))
	g.Expect(te.Status.Verification.Authorities[0].Signers).To(ConsistOf(trainenvv1.VerifiedSigner{Issuer: ciIssuer, Subject: ciSubject}))
	_, err = f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())

	wrong := f.create("laptop-built", k.push(t, "laptop-built", "mallory@trainenv.test"))
	_, err, wrong = f.reconcile(wrong)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(wrong).To(haveCondition(trainenvv1.ConditionVerified, metav1.ConditionFalse, trainenvv1.ReasonUntrustedSigner))
	g.Expect(condition(wrong, trainenvv1.ConditionVerified).Message).To(ContainSubstring("none of the expected identities matched"))
	g.Expect(wrong.Status.Phase).To(Equal(trainenvv1.PhaseFailed))
	_, err = f.statefulSet(wrong)
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "signed by another subject: nothing runs")
}

// A signature deleted after the environment started: Verified turns False with an event,
// and the workload is kept (the default) or stopped (onVerificationLoss: Stop), as the
// condition says; signed again, a stopped environment starts again.
func TestSignatureDeletedAfterStart(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	recorder := events.NewFakeRecorder(32)
	f.r.Recorder = recorder
	k := newKeylessTrust(f)
	f.gpuNode("lost-a100")
	image := k.push(t, "lost", ciSubject)

	te := f.create("lost", image)
	res, err, te := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionVerified, metav1.ConditionTrue, trainenvv1.ReasonVerified))
	g.Expect(res.RequeueAfter).To(BeNumerically(">", 0), "a verified digest is verified again later")
	pod := f.podFor(te, "lost-a100")

	deleteSignature(t, te.Status.Image.Resolved)
	f.clock.Step(601 * time.Second) // past the re-verification interval
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionVerified, metav1.ConditionFalse, trainenvv1.ReasonNoSignature))
	g.Expect(condition(te, trainenvv1.ConditionVerified).Message).To(ContainSubstring("the running workload is KEPT because spec.trust.onVerificationLoss is Keep"))
	g.Expect(drain(recorder)).To(ContainElement(And(HavePrefix("Warning "+trainenvv1.ReasonNoSignature), ContainSubstring("KEPT"))))
	sts, err := f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(*sts.Spec.Replicas).To(BeEquivalentTo(1), "kept")
	g.Expect(k8s.Get(f.ctx, client.ObjectKeyFromObject(pod), pod)).To(Succeed(), "the pod keeps running")

	te.Spec.Trust = &trainenvv1.TrustSpec{OnVerificationLoss: trainenvv1.VerificationLossStop}
	g.Expect(k8s.Update(f.ctx, te)).To(Succeed())
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(condition(te, trainenvv1.ConditionVerified).Message).To(ContainSubstring("the workload was STOPPED"))
	g.Expect(te).To(haveCondition(trainenvv1.ConditionWorkloadReady, metav1.ConditionFalse, trainenvv1.ReasonWaitingForChecks))
	g.Expect(drain(recorder)).To(ContainElement(ContainSubstring("no longer verified")))
	sts, err = f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(*sts.Spec.Replicas).To(BeEquivalentTo(0), "stopped, workspace kept")

	k.ss.Sign(t, te.Status.Image.Resolved, k.ss.Issue(t, sigstoretest.Identity{Issuer: ciIssuer, Subject: ciSubject}))
	f.clock.Step(31 * time.Second) // past the failure cache
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionVerified, metav1.ConditionTrue, trainenvv1.ReasonVerified))
	sts, err = f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(*sts.Spec.Replicas).To(BeEquivalentTo(1), "verified again: started again")
}

// deleteSignature deletes the .sig manifest of img (repository@sha256:...), as
// `cosign clean --type signature` does.
func deleteSignature(t *testing.T, img string) {
	t.Helper()
	ref, err := name.NewDigest(img)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := ociremote.SignatureTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Delete(tag); err != nil {
		t.Fatal(err)
	}
}

func drain(r *events.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-r.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}
