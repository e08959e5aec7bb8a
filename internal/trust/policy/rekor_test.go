package policy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	. "github.com/onsi/gomega"
	cbundle "github.com/sigstore/cosign/v2/pkg/cosign/bundle"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	"github.com/sigstore/sigstore/pkg/signature/payload"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/testutil/sigstoretest"
	"github.com/trainenv/trainenv/internal/trust"
)

// CVE-2026-22703 (GHSA-whqx-f9j3-ch6m, fixed in cosign v2.6.2): a cosign bundle verified
// even when its Rekor entry did not name the artifact's digest, signature or public key;
// only the log's SET over the entry was checked. The cases below attach entries that a
// real log would accept and sign (each verifies on its own), made by the trusted log, but
// for something other than the signature they come with. Each must be refused.
func TestRekorBundleMustNameTheSignature(t *testing.T) {
	reg := registrytest.New(t)
	release := newSigner(t)
	pub := release.publicKey(t)
	rekor := sigstoretest.NewRekorLog(t)
	root := rekorRoot(t, "private-rekor", rekor, sigstoretest.RekorURL)
	p := loggedKeyPolicy("logged", reg.Host+"/team/*", release.publicPEM, root.Name)
	other := push(t, reg, "team/other")

	cases := []struct {
		name    string
		entry   func(pl, sig []byte) *cbundle.RekorBundle
		reason  string
		message string
	}{
		{"entry for this signature", func(pl, sig []byte) *cbundle.RekorBundle {
			return rekor.Bundle(t, sigstoretest.HashedRekord(t, pl, sig, pub))
		}, trainenvv1.ReasonVerified, "verified by policy logged authority release-key"},
		// The same key's logged signature of another image: digest and signature differ.
		{"entry for another artifact signed with the same key", func(_, _ []byte) *cbundle.RekorBundle {
			otherPl := cosignPayload(t, other)
			return rekor.Bundle(t, sigstoretest.HashedRekord(t, otherPl, release.signBytes(t, otherPl), pub))
		}, trainenvv1.ReasonUntrustedSigner, "signature in bundle does not match signature being verified"},
		// The same payload signed again (ECDSA signatures are randomized): only the
		// signature differs from the one the image carries.
		{"entry for another signature of the same payload", func(pl, _ []byte) *cbundle.RekorBundle {
			return rekor.Bundle(t, sigstoretest.HashedRekord(t, pl, release.signBytes(t, pl), pub))
		}, trainenvv1.ReasonUntrustedSigner, "signature in bundle does not match signature being verified"},
		// This very signature and digest, under the second key that verifies them: only
		// the public key differs.
		{"entry for the same signature under another public key", func(pl, sig []byte) *cbundle.RekorBundle {
			sum := sha256.Sum256(pl)
			return rekor.Bundle(t, sigstoretest.HashedRekord(t, pl, sig, sigstoretest.TwinKey(t, pub, sum[:], sig)))
		}, trainenvv1.ReasonUntrustedSigner, "comparing public key PEMs"},
		// The right entry, signed by a log the TrustRoot does not name.
		{"entry from another log", func(pl, sig []byte) *cbundle.RekorBundle {
			return sigstoretest.NewRekorLog(t).Bundle(t, sigstoretest.HashedRekord(t, pl, sig, pub))
		}, trainenvv1.ReasonUntrustedSigner, "rekor log public key not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			img := push(t, reg, "team/app")
			release.signLogged(t, img, tc.entry)
			got, err := New(&StaticSource{Policies: pl(p), Roots: []pcv1alpha1.TrustRoot{*root}}, Options{}).Verify(bg, trust.Request{Image: img})
			g.Expect(err).NotTo(HaveOccurred())
			t.Logf("%s: %s", got.Reason, got.Message)
			g.Expect(got.Reason).To(Equal(tc.reason), got.Message)
			g.Expect(got.Allowed()).To(Equal(tc.reason == trainenvv1.ReasonVerified))
			g.Expect(got.Message).To(ContainSubstring(tc.message))
		})
	}
}

// TestRekorBundleRequired: a signature without a bundle, under an authority that requires
// the transparency log, is looked up in the log (policy-controller gives cosign the
// TrustRoot's log URL) and refused when the log does not have it; with the log unreachable
// the verdict is unknown, never allowed.
func TestRekorBundleRequired(t *testing.T) {
	reg := registrytest.New(t)
	release := newSigner(t)
	rekor := sigstoretest.NewRekorLog(t)
	emptyLog, searched := emptyRekorLog(t)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // connection refused

	img := push(t, reg, "team/app")
	release.sign(t, img) // cosign sign --tlog-upload=false: no bundle

	cases := []struct {
		name   string
		logURL string
		status metav1.ConditionStatus
		reason string
		msg    string
	}{
		{"log without the entry", emptyLog.URL, metav1.ConditionFalse, trainenvv1.ReasonUntrustedSigner, "signature not found in transparency log"},
		{"log unreachable", down.URL, metav1.ConditionUnknown, trainenvv1.ReasonRegistryUnavailable, "connection refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			u, err := apis.ParseURL(tc.logURL)
			g.Expect(err).NotTo(HaveOccurred())
			root := rekorRoot(t, "private-rekor", rekor, u)
			p := loggedKeyPolicy("logged", reg.Host+"/team/*", release.publicPEM, root.Name)
			got, _ := New(&StaticSource{Policies: pl(p), Roots: []pcv1alpha1.TrustRoot{*root}}, Options{}).Verify(bg, trust.Request{Image: img})
			t.Logf("%s: %s", got.Reason, got.Message)
			g.Expect(got.Allowed()).To(BeFalse())
			g.Expect(got.Status).To(Equal(tc.status))
			g.Expect(got.Reason).To(Equal(tc.reason), got.Message)
			g.Expect(got.Message).To(ContainSubstring(tc.msg))
		})
	}
	if searched.Load() == 0 {
		t.Error("the log was never searched for the signature")
	}
}

// loggedKeyPolicy trusts one key and requires each signature's entry in the transparency
// log of the TrustRoot trustRoot (ctlog), checked offline from the signature's bundle.
func loggedKeyPolicy(name, glob, publicPEM, trustRoot string) pcv1alpha1.ClusterImagePolicy {
	p := keyPolicy(name, glob, publicPEM)
	p.Spec.Authorities[0].CTLog = &pcv1alpha1.TLog{TrustRootRef: trustRoot}
	return p
}

// rekorRoot is a TrustRoot naming the Rekor log (at logURL); policy-controller requires a
// certificate authority in any sigstoreKeys, so it carries a private Sigstore's as well.
func rekorRoot(t *testing.T, name string, log *sigstoretest.RekorLog, logURL *apis.URL) *pcv1alpha1.TrustRoot {
	root := sigstoretest.New(t).TrustRoot(t, name)
	root.Spec.SigstoreKeys.TLogs = []pcv1alpha1.TransparencyLogInstance{log.TLog(t, logURL)}
	return root
}

func cosignPayload(t *testing.T, img string) []byte {
	t.Helper()
	pl, err := payload.Cosign{Image: digest(t, img)}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

func (s signer) signBytes(t *testing.T, msg []byte) []byte {
	t.Helper()
	sig, err := s.sv.SignMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func (s signer) publicKey(t *testing.T) *ecdsa.PublicKey {
	t.Helper()
	pub, err := s.sv.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return pub.(*ecdsa.PublicKey)
}

// emptyRekorLog is a transparency log that has no entries: it counts the searches for one.
func emptyRekorLog(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var searched atomic.Int32
	log := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/api/v1/log/entries/retrieve" {
			searched.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte("[]")) // no entry for this signature
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(log.Close)
	return log, &searched
}
