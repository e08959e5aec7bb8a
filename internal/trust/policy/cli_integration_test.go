package policy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	. "github.com/onsi/gomega"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"

	"github.com/trainenv/trainenv/internal/testutil/distribution"
	"github.com/trainenv/trainenv/internal/trust"
)

// cliWorld is the real distribution registry on loopback and the real cosign CLI, with
// two key pairs made by `cosign generate-key-pair`.
type cliWorld struct {
	cosign, dir, host string
}

func newCLIWorld(tb testing.TB) *cliWorld {
	tb.Helper()
	w := &cliWorld{
		cosign: distribution.Tool(tb, "COSIGN"),
		dir:    tb.TempDir(),
	}
	w.host = distribution.Start(tb, distribution.Tool(tb, "DOCKER_REGISTRY"))
	w.run(tb, "generate-key-pair", "--output-key-prefix", "release")
	w.run(tb, "generate-key-pair", "--output-key-prefix", "other")
	return w
}

// run runs cosign in the world's directory, with an empty key password and a private
// home, so that nothing outside the test is read or written.
func (w *cliWorld) run(tb testing.TB, args ...string) string {
	tb.Helper()
	cmd := exec.Command(w.cosign, args...)
	cmd.Dir = w.dir
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=", "HOME="+w.dir, "TUF_ROOT="+filepath.Join(w.dir, "tuf"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// push writes a random image to team/<repo>:1 and returns repository@digest.
func (w *cliWorld) push(tb testing.TB, repo string) string {
	tb.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		tb.Fatal(err)
	}
	tag, err := name.NewTag(w.host + "/team/" + repo + ":1")
	if err != nil {
		tb.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		tb.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		tb.Fatal(err)
	}
	return tag.Context().Name() + "@" + d.String()
}

// sign is `cosign sign --key <key>.key` without a transparency log (none is reachable).
func (w *cliWorld) sign(tb testing.TB, key, img string) {
	tb.Helper()
	w.run(tb, "sign", "--key", key+".key", "--tlog-upload=false", "--allow-insecure-registry", "--yes", img)
}

// attest is `cosign attest --type slsaprovenance` with a predicate naming builderID.
func (w *cliWorld) attest(tb testing.TB, key, img, builderID string) {
	tb.Helper()
	predicate := filepath.Join(w.dir, "provenance.json")
	if err := os.WriteFile(predicate, []byte(`{"builder":{"id":"`+builderID+`"},"buildType":"https://example.com/build@v1"}`), 0o600); err != nil {
		tb.Fatal(err)
	}
	w.run(tb, "attest", "--key", key+".key", "--type", "slsaprovenance", "--predicate", predicate,
		"--tlog-upload=false", "--allow-insecure-registry", "--yes", img)
}

func (w *cliWorld) publicKey(tb testing.TB, key string) string {
	tb.Helper()
	pem, err := os.ReadFile(filepath.Join(w.dir, key+".pub"))
	if err != nil {
		tb.Fatal(err)
	}
	return string(pem)
}

// TestCosignCLIInteroperability: images signed and attested by the real cosign CLI in the
// real distribution registry are verified by trainenv (policy-controller's engine) as the
// policy says. Run by `make test`, which installs cosign and docker-registry.
func TestCosignCLIInteroperability(t *testing.T) {
	w := newCLIWorld(t)
	signed := w.push(t, "signed")
	w.sign(t, "release", signed)
	foreign := w.push(t, "foreign")
	w.sign(t, "other", foreign)
	unsigned := w.push(t, "unsigned")
	attested := w.push(t, "attested")
	w.attest(t, "release", attested, trustedBuilder)
	wrongBuilder := w.push(t, "wrong-builder")
	w.attest(t, "release", wrongBuilder, "https://evil.example.com/builder")

	glob := w.host + "/team/**"
	release := w.publicKey(t, "release")
	key := keyPolicy("release", glob, release)
	slsa := provenancePolicy("provenance", glob, release, trustedBuilder)
	cases := []struct {
		name   string
		policy pcv1alpha1.ClusterImagePolicy
		image  string
		reason string
	}{
		{"signed with the trusted key", key, signed, trust.ReasonVerified},
		{"signed with another key", key, foreign, trust.ReasonUntrustedSigner},
		{"unsigned", key, unsigned, trust.ReasonNoSignature},
		{"provenance attested by the trusted key and builder", slsa, attested, trust.ReasonVerified},
		{"provenance required, only a signature", slsa, signed, trust.ReasonAttestationMissing},
		{"provenance from another builder", slsa, wrongBuilder, trust.ReasonAttestationPolicyFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := New(&StaticSource{Policies: pl(tc.policy)}, Options{}).Verify(bg, trust.Request{Image: tc.image})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got.Reason).To(Equal(tc.reason), got.Message)
			g.Expect(got.Allowed).To(Equal(tc.reason == trust.ReasonVerified))
		})
	}

	// And the CLI agrees with trainenv on the same registry.
	g := NewWithT(t)
	out := w.run(t, "verify", "--key", "release.pub", "--insecure-ignore-tlog=true", "--allow-insecure-registry", signed)
	g.Expect(out).To(ContainSubstring("The signatures were verified against the specified public key"))
}

// BenchmarkCosignCLIVersusTrainenv verifies one CLI-signed image in the real registry on
// loopback: with the `cosign verify` CLI (a process per image, as a script or an admission
// hook calling it would), with trainenv cold (a new Verifier: policy compiled, signatures
// fetched) and with trainenv's cached verdict.
func BenchmarkCosignCLIVersusTrainenv(b *testing.B) {
	w := newCLIWorld(b)
	img := w.push(b, "bench")
	w.sign(b, "release", img)
	src := &StaticSource{Policies: pl(keyPolicy("release", w.host+"/team/**", w.publicKey(b, "release")))}
	verify := func(b *testing.B, v *Verifier) {
		got, err := v.Verify(bg, trust.Request{Image: img})
		if err != nil || got.Reason != trust.ReasonVerified {
			b.Fatalf("%v: %s", err, got.Message)
		}
	}
	b.Run("cosign-verify-cli", func(b *testing.B) {
		for b.Loop() {
			w.run(b, "verify", "--key", "release.pub", "--insecure-ignore-tlog=true", "--allow-insecure-registry", img)
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
