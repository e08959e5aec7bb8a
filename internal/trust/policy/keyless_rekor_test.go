package policy

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	. "github.com/onsi/gomega"
	cbundle "github.com/sigstore/cosign/v2/pkg/cosign/bundle"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/testutil/sigstoretest"
	"github.com/trainenv/trainenv/internal/trust"
)

// TestRekorBundleKeylessMustNameTheSignature is TestRekorBundleMustNameTheSignature
// (CVE-2026-22703, GHSA-whqx-f9j3-ch6m) for a keyless authority that requires the
// transparency log: the entry's verifier is then the signing certificate, not a key. Each
// entry below is one the trusted log would accept and sign, integrated (now) within the
// certificate's validity, but for something other than the signature it comes with. A
// signature without a bundle is looked up in the log, which does not have it.
func TestRekorBundleKeylessMustNameTheSignature(t *testing.T) {
	reg := registrytest.New(t)
	ss := sigstoretest.New(t)
	ci := sigstoretest.Identity{Issuer: ciIssuer, Subject: ciSubject}
	cert := ss.Issue(t, ci)
	rekor := sigstoretest.NewRekorLog(t)
	emptyLog, searched := emptyRekorLog(t)
	logURL, err := apis.ParseURL(emptyLog.URL)
	if err != nil {
		t.Fatal(err)
	}
	root := ss.TrustRoot(t, "private-sigstore")
	root.Spec.SigstoreKeys.TLogs = []pcv1alpha1.TransparencyLogInstance{rekor.TLog(t, logURL)}
	p := keylessPolicy("keyless", reg.Host+"/team/*", root.Name, pcv1alpha1.Identity{Issuer: ciIssuer, Subject: ciSubject})
	p.Spec.Authorities[0].CTLog = &pcv1alpha1.TLog{TrustRootRef: root.Name}
	other := push(t, reg, "team/other")

	cases := []struct {
		name     string
		entry    func(pl, sig []byte) *cbundle.RekorBundle // nil: no bundle
		status   metav1.ConditionStatus
		reason   string
		message  string
		searched bool
	}{
		{"entry for this signature", func(pl, sig []byte) *cbundle.RekorBundle {
			return rekor.Bundle(t, sigstoretest.HashedRekordCert(t, pl, sig, cert.Cert))
		}, metav1.ConditionTrue, trainenvv1.ReasonVerified, ciSubject + " (issuer " + ciIssuer + ")", false},
		// The same certificate's logged signature of another image: digest and signature differ.
		{"entry for another artifact signed with the same certificate", func(_, _ []byte) *cbundle.RekorBundle {
			otherPl := cosignPayload(t, other)
			return rekor.Bundle(t, sigstoretest.HashedRekordCert(t, otherPl, signWith(t, cert.Key, otherPl), cert.Cert))
		}, metav1.ConditionFalse, trainenvv1.ReasonUntrustedSigner, "signature in bundle does not match signature being verified", false},
		// This very signature and digest, under a second certificate of the same CA and
		// identity for the key that also verifies them: only the certificate differs.
		{"entry naming another certificate", func(pl, sig []byte) *cbundle.RekorBundle {
			sum := sha256.Sum256(pl)
			twin := ss.Issue(t, ci, sigstoretest.ForKey(sigstoretest.TwinKey(t, &cert.Key.PublicKey, sum[:], sig)))
			return rekor.Bundle(t, sigstoretest.HashedRekordCert(t, pl, sig, twin.Cert))
		}, metav1.ConditionFalse, trainenvv1.ReasonUntrustedSigner, "comparing public key PEMs", false},
		// The right entry, signed by a log the TrustRoot does not name.
		{"entry from another log", func(pl, sig []byte) *cbundle.RekorBundle {
			return sigstoretest.NewRekorLog(t).Bundle(t, sigstoretest.HashedRekordCert(t, pl, sig, cert.Cert))
		}, metav1.ConditionFalse, trainenvv1.ReasonUntrustedSigner, "rekor log public key not found", false},
		{"no bundle", nil, metav1.ConditionFalse, trainenvv1.ReasonUntrustedSigner, "signature not found in transparency log", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			img := push(t, reg, "team/app")
			ss.SignLogged(t, img, cert, tc.entry)
			before := searched.Load()
			got, err := New(&StaticSource{Policies: pl(p), Roots: []pcv1alpha1.TrustRoot{*root}}, Options{}).Verify(bg, trust.Request{Image: img})
			g.Expect(err).NotTo(HaveOccurred())
			t.Logf("%s %s: %s", got.Status, got.Reason, got.Message)
			g.Expect(got.Reason).To(Equal(tc.reason), got.Message)
			g.Expect(got.Status).To(Equal(tc.status))
			g.Expect(got.Allowed()).To(Equal(tc.reason == trainenvv1.ReasonVerified))
			g.Expect(got.Message).To(ContainSubstring(tc.message))
			// A bundled signature is checked offline; only the unbundled one asks the log.
			g.Expect(searched.Load() > before).To(Equal(tc.searched))
			if got.Allowed() {
				g.Expect(got.Passed).To(ConsistOf(trust.AuthorityResult{Policy: "keyless", Authority: "ci-keyless",
					Signers: []trust.Signer{{Issuer: ciIssuer, Subject: ciSubject}}}))
			}
		})
	}
}

func signWith(t *testing.T, key *ecdsa.PrivateKey, msg []byte) []byte {
	t.Helper()
	sum := sha256.Sum256(msg)
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return sig
}
