package policy

import (
	"testing"

	. "github.com/onsi/gomega"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/distribution"
	"github.com/trainenv/trainenv/internal/trust"
)

// TestCosignCLIInteroperability: images signed and attested by the real cosign CLI in the
// real distribution registry are verified by trainenv (policy-controller's engine) as the
// policy says. Run by `make test`, which installs cosign and docker-registry.
func TestCosignCLIInteroperability(t *testing.T) {
	w := distribution.NewCosignWorld(t)
	signed := w.Push(t, "team/signed")
	w.Sign(t, "release", signed)
	foreign := w.Push(t, "team/foreign")
	w.Sign(t, "other", foreign)
	unsigned := w.Push(t, "team/unsigned")
	attested := w.Push(t, "team/attested")
	w.Attest(t, "release", attested, trustedBuilder)
	wrongBuilder := w.Push(t, "team/wrong-builder")
	w.Attest(t, "release", wrongBuilder, "https://evil.example.com/builder")

	glob := w.Host + "/team/**"
	release := w.PublicKey(t, "release")
	key := keyPolicy("release", glob, release)
	slsa := provenancePolicy("provenance", glob, release, trustedBuilder)
	cases := []struct {
		name   string
		policy pcv1alpha1.ClusterImagePolicy
		image  string
		reason string
	}{
		{"signed with the trusted key", key, signed, trainenvv1.ReasonVerified},
		{"signed with another key", key, foreign, trainenvv1.ReasonUntrustedSigner},
		{"unsigned", key, unsigned, trainenvv1.ReasonNoSignature},
		{"provenance attested by the trusted key and builder", slsa, attested, trainenvv1.ReasonVerified},
		{"provenance required, only a signature", slsa, signed, trainenvv1.ReasonAttestationMissing},
		{"provenance from another builder", slsa, wrongBuilder, trainenvv1.ReasonAttestationPolicyFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := New(&StaticSource{Policies: pl(tc.policy)}, Options{}).Verify(bg, trust.Request{Image: tc.image})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got.Reason).To(Equal(tc.reason), got.Message)
			g.Expect(got.Allowed()).To(Equal(tc.reason == trainenvv1.ReasonVerified))
		})
	}

	// And the CLI agrees with trainenv on the same registry.
	g := NewWithT(t)
	out := w.Run(t, "verify", "--key", "release.pub", "--insecure-ignore-tlog=true", "--allow-insecure-registry", signed)
	g.Expect(out).To(ContainSubstring("The signatures were verified against the specified public key"))
}

// BenchmarkCosignCLIVersusTrainenv verifies one CLI-signed image in the real registry on
// loopback: with the `cosign verify` CLI (a process per image, as a script or an admission
// hook calling it would), with trainenv cold (a new Verifier: policy compiled, signatures
// fetched) and with trainenv's cached verdict.
func BenchmarkCosignCLIVersusTrainenv(b *testing.B) {
	w := distribution.NewCosignWorld(b)
	img := w.Push(b, "team/bench")
	w.Sign(b, "release", img)
	src := &StaticSource{Policies: pl(keyPolicy("release", w.Host+"/team/**", w.PublicKey(b, "release")))}
	verify := func(b *testing.B, v *Verifier) {
		got, err := v.Verify(bg, trust.Request{Image: img})
		if err != nil || got.Reason != trainenvv1.ReasonVerified {
			b.Fatalf("%v: %s", err, got.Message)
		}
	}
	b.Run("cosign-verify-cli", func(b *testing.B) {
		for b.Loop() {
			w.Run(b, "verify", "--key", "release.pub", "--insecure-ignore-tlog=true", "--allow-insecure-registry", img)
		}
	})
	b.Run("trainenv-cold", func(b *testing.B) {
		for b.Loop() {
			verify(b, New(src, Options{}))
		}
	})
	b.Run("trainenv-cached", func(b *testing.B) {
		v := New(src, Options{})
		verify(b, v)
		for b.Loop() {
			verify(b, v)
		}
	})
}
