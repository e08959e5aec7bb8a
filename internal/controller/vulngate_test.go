package controller_test

import (
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/testutil/scandocs"
	"github.com/trainenv/trainenv/internal/testutil/sigstoretest"
	"github.com/trainenv/trainenv/internal/trust/policy"
	"github.com/trainenv/trainenv/internal/trust/vulngate"
)

// A running environment whose vulnerability scan ages past its policy's limit: the
// periodic re-verification (due no later than the moment the scan ages out) turns Verified
// False with VulnerabilityScanStale and an event, and spec.trust.onVerificationLoss decides:
// kept with the warning, or stopped; a fresh scan starts it again. The policy, the scan and
// the VEX document are real (a ClusterImagePolicy in the API server, statements signed and
// attached to the registry as cosign attest does); the clock is the test's.
func TestVulnerabilityScanAgesOut(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	recorder := events.NewFakeRecorder(32)
	f.r.Recorder = recorder
	reg := registrytest.New(t)
	ci := sigstoretest.NewKey(t)
	der, err := x509.MarshalPKIXPublicKey(ci.Public())
	g.Expect(err).NotTo(HaveOccurred())
	cip := &pcv1alpha1.ClusterImagePolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "ml-vuln-gate-" + f.ns, Annotations: map[string]string{vulngate.AnnotationGate: "maxScanAge: 7d"}},
		Spec: pcv1alpha1.ClusterImagePolicySpec{
			Images: []pcv1alpha1.ImagePattern{{Glob: reg.Host + "/ml/**"}},
			Authorities: []pcv1alpha1.Authority{{Name: "ci-scan",
				Key:          &pcv1alpha1.KeyRef{Data: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))},
				Attestations: []pcv1alpha1.Attestation{{Name: "scan", PredicateType: "vuln"}, {Name: "vex", PredicateType: "openvex"}},
			}},
		},
	}
	g.Expect(k8s.Create(f.ctx, cip)).To(Succeed())
	t.Cleanup(func() { _ = k8s.Delete(f.ctx, cip) })
	f.r.Verifier = policy.New(&policy.APISource{Policies: k8s, Refs: k8s}, policy.Options{Now: f.clock.Now})
	f.gpuNode("scan-a100")

	img := reg.Host + "/ml/pytorch@" + reg.Push("ml/pytorch", "1", registrytest.Image(t))
	scanned := f.clock.Now().Add(-7*24*time.Hour + 5*time.Minute) // ages out in 5 minutes
	sigstoretest.AttestWithKey(t, img, ci, vulngate.VulnPredicate,
		scandocs.Trivy(scanned, "CVE-2024-3094:CRITICAL:liblzma5", "CVE-2023-0001:LOW:libc6"))
	sigstoretest.AttestWithKey(t, img, ci, vulngate.OpenVEXPredicate, scandocs.OpenVEX(img, scanned,
		scandocs.Statement{CVE: "CVE-2024-3094", Status: "not_affected", At: scanned}))

	te := f.create("scanned", reg.Host+"/ml/pytorch:1")
	res, err, te := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionVerified, metav1.ConditionTrue, trainenvv1.ReasonVerified))
	g.Expect(res.RequeueAfter).To(BeNumerically("~", 5*time.Minute, time.Second), "verified again when the scan ages out, not 10 minutes later")
	summary := te.Status.Verification.Vulnerabilities.DeepCopy()
	g.Expect(summary.ScanFinishedAt.Time).To(BeTemporally("==", scanned))
	summary.ScanFinishedAt = nil
	g.Expect(summary).To(Equal(&trainenvv1.VulnerabilitySummary{Policy: cip.Name, Scanner: "trivy", ScannerVersion: "0.58.1",
		Low: 1, NotAffected: 1}), "the CRITICAL CVE is not_affected per the VEX statement")
	pod := f.podFor(te, "scan-a100")
	g.Expect(pod).NotTo(BeNil())

	f.clock.Step(6 * time.Minute)
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionVerified, metav1.ConditionFalse, trainenvv1.ReasonVulnerabilityScanStale))
	msg := condition(te, trainenvv1.ConditionVerified).Message
	g.Expect(msg).To(ContainSubstring("7 days ago, over the limit of 7d"))
	g.Expect(msg).To(ContainSubstring("the running workload is KEPT"))
	g.Expect(drain(recorder)).To(ContainElement(And(HavePrefix("Warning "+trainenvv1.ReasonVulnerabilityScanStale), ContainSubstring("KEPT"))))
	g.Expect(te.Status.Verification.Vulnerabilities).NotTo(BeNil(), "status still shows what the stale scan found")
	sts, err := f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(*sts.Spec.Replicas).To(BeEquivalentTo(1), "kept")

	te.Spec.Trust = &trainenvv1.TrustSpec{OnVerificationLoss: trainenvv1.VerificationLossStop}
	g.Expect(k8s.Update(f.ctx, te)).To(Succeed())
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(condition(te, trainenvv1.ConditionVerified).Message).To(ContainSubstring("the workload was STOPPED"))
	g.Expect(drain(recorder)).To(ContainElement(ContainSubstring("no longer verified")))
	sts, err = f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(*sts.Spec.Replicas).To(BeEquivalentTo(0), "stopped, workspace kept")

	// A new scan (the same findings, the same VEX) is attested: it starts again.
	sigstoretest.AttestWithKey(t, img, ci, vulngate.VulnPredicate,
		scandocs.Trivy(f.clock.Now(), "CVE-2024-3094:CRITICAL:liblzma5", "CVE-2023-0001:LOW:libc6"))
	f.clock.Step(31 * time.Second) // past the failure cache
	res, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionVerified, metav1.ConditionTrue, trainenvv1.ReasonVerified))
	g.Expect(res.RequeueAfter).To(BeNumerically("<=", 10*time.Minute))
	g.Expect(te.Status.Verification.Vulnerabilities.ScanFinishedAt.Time).To(BeTemporally("~", f.clock.Now(), time.Minute))
	sts, err = f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(*sts.Spec.Replicas).To(BeEquivalentTo(1), "a fresh scan: started again")
}
