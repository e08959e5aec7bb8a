package policy

import (
	"crypto/x509"
	"encoding/pem"
	"testing"

	. "github.com/onsi/gomega"
	"github.com/sigstore/policy-controller/pkg/apis/config"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"google.golang.org/protobuf/encoding/protojson"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/distribution"
	"github.com/trainenv/trainenv/internal/testutil/sigstoretest"
	"github.com/trainenv/trainenv/internal/trust"
)

// TestCosign3CLIInteroperability: images signed and attested by the real cosign v3 CLI
// with its defaults (sigstore bundles as OCI referrers; offline signing configuration) in
// the real distribution registry, which has no referrers API, are verified by trainenv as
// the policy says, key-based and keyless, alone and beside a legacy signature; for the
// positive cases `cosign verify` / `verify-attestation` of the same CLI agrees. Run by
// `make test`, which installs cosign v3 and docker-registry.
func TestCosign3CLIInteroperability(t *testing.T) {
	w := distribution.NewCosign3World(t)
	legacy := func(key, img string) {
		w.Run(t, "sign", "--key", key+".key", "--new-bundle-format=false", "--use-signing-config=false", "--tlog-upload=false",
			"--allow-insecure-registry", "--yes", img)
	}
	signed := w.Push(t, "team/signed")
	w.SignBundle(t, "release", signed)
	foreign := w.Push(t, "team/foreign")
	w.SignBundle(t, "other", foreign)
	unsigned := w.Push(t, "team/unsigned")
	both := w.Push(t, "team/both")
	legacy("release", both)
	w.SignBundle(t, "release", both)
	mixed := w.Push(t, "team/mixed")
	legacy("other", mixed)
	w.SignBundle(t, "release", mixed)
	attested := w.Push(t, "team/attested")
	w.AttestBundle(t, "release", attested, "slsaprovenance", provenance(trustedBuilder))
	wrongBuilder := w.Push(t, "team/wrong-builder")
	w.AttestBundle(t, "release", wrongBuilder, "slsaprovenance", provenance("https://evil.example.com/builder"))

	// Keyless: a certificate from the test CA (with its CT log's SCT) for a key that the
	// CLI imports, attached to the bundle with --certificate, as Fulcio's would be. (Adding
	// --certificate-chain makes cosign v3.1.3 put the chain into a v0.3 bundle, which the
	// bundle spec forbids: sigstore-go refuses it and so does `cosign verify` itself.)
	ss := sigstoretest.New(t)
	root := ss.TrustRoot(t, "private-sigstore")
	cert := ss.Issue(t, sigstoretest.Identity{Issuer: ciIssuer, Subject: ciSubject})
	der, err := x509.MarshalPKCS8PrivateKey(cert.Key)
	if err != nil {
		t.Fatal(err)
	}
	w.WriteFile(t, "leaf.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	certPEM, _ := cryptoutils.MarshalCertificateToPEM(cert.Cert)
	w.WriteFile(t, "leaf.crt", certPEM)
	w.Run(t, "import-key-pair", "--key", "leaf.pem", "--output-key-prefix", "leaf")
	keylessSigned := w.Push(t, "team/keyless")
	w.SignBundle(t, "leaf", keylessSigned, "--certificate", "leaf.crt")

	glob := w.Host + "/team/**"
	release := w.PublicKey(t, "release")
	key := keyPolicy("release", glob, release)
	slsa := provenancePolicy("provenance", glob, release, trustedBuilder)
	keyless := keylessPolicy("keyless", glob, root.Name, pcv1alpha1.Identity{Issuer: ciIssuer, Subject: ciSubject})
	cases := []struct {
		name   string
		policy pcv1alpha1.ClusterImagePolicy
		image  string
		reason string
	}{
		{"bundle signed with the trusted key", key, signed, trainenvv1.ReasonVerified},
		{"bundle signed with another key", key, foreign, trainenvv1.ReasonUntrustedSigner},
		{"unsigned", key, unsigned, trainenvv1.ReasonNoSignature},
		{"both formats by the trusted key", key, both, trainenvv1.ReasonVerified},
		{"legacy by another key, bundle by the trusted key", key, mixed, trainenvv1.ReasonVerified},
		{"provenance bundle from the trusted builder", slsa, attested, trainenvv1.ReasonVerified},
		{"provenance required, only a signature bundle", slsa, signed, trainenvv1.ReasonAttestationMissing},
		{"provenance bundle from another builder", slsa, wrongBuilder, trainenvv1.ReasonAttestationPolicyFailed},
		{"keyless bundle, trusted identity", keyless, keylessSigned, trainenvv1.ReasonVerified},
		{"keyless policy, key-signed bundle", keyless, signed, trainenvv1.ReasonUntrustedSigner},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			v := New(&StaticSource{Policies: pl(tc.policy), Roots: []pcv1alpha1.TrustRoot{*root}}, Options{})
			got, err := v.Verify(bg, trust.Request{Image: tc.image})
			g.Expect(err).NotTo(HaveOccurred())
			t.Logf("%s: %s", got.Reason, got.Message)
			g.Expect(got.Reason).To(Equal(tc.reason), got.Message)
			g.Expect(got.Allowed()).To(Equal(tc.reason == trainenvv1.ReasonVerified))
		})
	}

	// And the CLI agrees with trainenv on the positive cases.
	g := NewWithT(t)
	for _, img := range []string{signed, both, mixed} {
		out := w.Run(t, "verify", "--key", "release.pub", "--insecure-ignore-tlog=true", "--allow-insecure-registry", img)
		g.Expect(out).To(ContainSubstring("The signatures were verified against the specified public key"))
	}
	out := w.Run(t, "verify-attestation", "--key", "release.pub", "--type", "slsaprovenance", "--insecure-ignore-tlog=true",
		"--allow-insecure-registry", attested)
	g.Expect(out).To(ContainSubstring("The signatures were verified against the specified public key"))
	keys, err := config.ConvertSigstoreKeys(bg, root.Spec.SigstoreKeys)
	g.Expect(err).NotTo(HaveOccurred())
	trustedRoot, err := protojson.Marshal(sigstoreGoRoot(keys))
	g.Expect(err).NotTo(HaveOccurred())
	w.WriteFile(t, "trusted_root.json", trustedRoot)
	out = w.Run(t, "verify", "--trusted-root", "trusted_root.json", "--certificate-identity", ciSubject,
		"--certificate-oidc-issuer", ciIssuer, "--insecure-ignore-tlog=true", "--allow-insecure-registry", keylessSigned)
	g.Expect(out).To(ContainSubstring("The code-signing certificate was verified using trusted certificate authority certificates"))
}

// BenchmarkCosign3CLIVersusTrainenv is BenchmarkCosignCLIVersusTrainenv for a digest
// signed by cosign v3 (a bundle as a referrer, on a registry without the referrers API),
// beside one that the same CLI signed in the legacy format, in the same registry.
func BenchmarkCosign3CLIVersusTrainenv(b *testing.B) {
	w := distribution.NewCosign3World(b)
	img := w.Push(b, "team/bench")
	w.SignBundle(b, "release", img)
	legacyImg := w.Push(b, "team/bench-legacy")
	w.Run(b, "sign", "--key", "release.key", "--new-bundle-format=false", "--use-signing-config=false", "--tlog-upload=false",
		"--allow-insecure-registry", "--yes", legacyImg)
	src := &StaticSource{Policies: pl(keyPolicy("release", w.Host+"/team/**", w.PublicKey(b, "release")))}
	verifyImg := func(b *testing.B, v *Verifier, img string) {
		got, err := v.Verify(bg, trust.Request{Image: img})
		if err != nil || got.Reason != trainenvv1.ReasonVerified {
			b.Fatalf("%v: %s", err, got.Message)
		}
	}
	verify := func(b *testing.B, v *Verifier) { verifyImg(b, v, img) }
	b.Run("trainenv-legacy-cold", func(b *testing.B) {
		for b.Loop() {
			verifyImg(b, New(src, Options{}), legacyImg)
		}
	})
	b.Run("trainenv-legacy-cached", func(b *testing.B) {
		v := New(src, Options{})
		verifyImg(b, v, legacyImg)
		for b.Loop() {
			verifyImg(b, v, legacyImg)
		}
	})
	b.Run("cosign3-verify-cli", func(b *testing.B) {
		for b.Loop() {
			w.Run(b, "verify", "--key", "release.pub", "--insecure-ignore-tlog=true", "--allow-insecure-registry", img)
		}
	})
	b.Run("trainenv-bundle-cold", func(b *testing.B) {
		for b.Loop() {
			verify(b, New(src, Options{}))
		}
	})
	b.Run("trainenv-bundle-cached", func(b *testing.B) {
		v := New(src, Options{})
		verify(b, v)
		for b.Loop() {
			verify(b, v)
		}
	})
}
