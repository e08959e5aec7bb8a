package controller_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/trust"
	"github.com/trainenv/trainenv/internal/trust/policy"
)

// Failing closed, through the real API server and the real policy engine: an image no
// ClusterImagePolicy covers, or an unsigned one, never gets a workload, and the user sees
// why. (Signed, wrong-key, attestation and warn-mode cases are in internal/trust/policy.)
func TestUnverifiedImagesNeverRun(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	f.r.Verifier = policy.New(&policy.APISource{Policies: k8s, Refs: k8s}, policy.Options{})
	reg := registrytest.New(t)
	reg.Push("team/pytorch", "2.4", registrytest.Image(t))
	f.gpuNode("trust-a100")

	te := f.create("untrusted", reg.Host+"/team/pytorch:2.4")
	_, err, te := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionVerified, metav1.ConditionFalse, trainenvv1.ReasonNoMatchingPolicy))
	g.Expect(te).To(haveCondition(trainenvv1.ConditionReady, metav1.ConditionFalse, trainenvv1.ReasonNoMatchingPolicy))
	g.Expect(te.Status.Phase).To(Equal(trainenvv1.PhaseFailed))
	_, err = f.statefulSet(te)
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "no matching policy: nothing runs")

	cip := &pcv1alpha1.ClusterImagePolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "team-release"},
		Spec: pcv1alpha1.ClusterImagePolicySpec{
			Images:      []pcv1alpha1.ImagePattern{{Glob: reg.Host + "/team/**"}},
			Authorities: []pcv1alpha1.Authority{{Name: "release-key", Key: &pcv1alpha1.KeyRef{Data: publicKeyPEM(t)}}},
		},
	}
	g.Expect(k8s.Create(f.ctx, cip)).To(Succeed())
	t.Cleanup(func() { _ = k8s.Delete(f.ctx, cip) })

	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionVerified, metav1.ConditionFalse, trainenvv1.ReasonNoSignature))
	g.Expect(condition(te, trainenvv1.ConditionVerified).Message).To(ContainSubstring("team-release"))
	g.Expect(te.Status.Verification).NotTo(BeNil())
	g.Expect(te.Status.Verification.Digest).To(Equal(te.Status.Image.Resolved), "the digest is verified, never the tag")
	g.Expect(te.Status.Verification.Policies).To(ConsistOf("team-release"))
	g.Expect(te.Status.Verification.Authorities).To(BeEmpty())
	_, err = f.statefulSet(te)
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "unsigned: nothing runs")
}

func publicKeyPEM(t *testing.T) string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// denyDigests allows every image but those listed.
type denyDigests map[string]bool

func (d denyDigests) Verify(_ context.Context, req trust.Request) (trust.Verdict, error) {
	if d[req.Image] {
		return trust.Verdict{Status: metav1.ConditionFalse, Reason: trainenvv1.ReasonNoSignature, Message: "no signatures found", Digest: req.Image}, nil
	}
	return trust.Verdict{Status: metav1.ConditionTrue, Reason: trainenvv1.ReasonVerified, Message: "verified", Digest: req.Image}, nil
}

// Under FollowTag, a tag moved to an unsigned digest never replaces the running one.
func TestFollowTagNeverRollsToAnUnverifiedDigest(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	reg := registrytest.New(t)
	first := reg.Push("team/pytorch", "latest", registrytest.Image(t))
	f.gpuNode("follow-a100")
	deny := denyDigests{}
	f.r.Verifier = deny

	te := f.create("follow", reg.Host+"/team/pytorch:latest", func(te *trainenvv1.TrainingEnvironment) {
		te.Spec.UpdatePolicy = trainenvv1.UpdatePolicyFollowTag
	})
	_, err, te := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te.Status.Image.Digest).To(Equal(first))

	second := reg.Push("team/pytorch", "latest", registrytest.Image(t))
	deny[reg.Host+"/team/pytorch@"+second] = true
	f.clock.Step(601 * time.Second)
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te.Status.Image.Digest).To(Equal(first), "the unverified digest is not pinned")
	g.Expect(te.Status.Image.LatestDigest).To(Equal(second))
	g.Expect(te).To(haveCondition(trainenvv1.ConditionImageResolved, metav1.ConditionTrue, trainenvv1.ReasonTagMoved))
	g.Expect(condition(te, trainenvv1.ConditionImageResolved).Message).To(ContainSubstring("failed verification"))
	g.Expect(te).To(haveCondition(trainenvv1.ConditionVerified, metav1.ConditionTrue, trainenvv1.ReasonVerified), "the running digest stays verified")
	sts, err := f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sts.Spec.Template.Spec.Containers[0].Image).To(HaveSuffix(first))

	// Once the new digest is signed (allowed), the next check rolls to it.
	delete(deny, reg.Host+"/team/pytorch@"+second)
	f.clock.Step(601 * time.Second)
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te.Status.Image.Digest).To(Equal(second))
	sts, err = f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sts.Spec.Template.Spec.Containers[0].Image).To(HaveSuffix(second))
}
