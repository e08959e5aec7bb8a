package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/distribution"
	"github.com/trainenv/trainenv/internal/trust"
	"github.com/trainenv/trainenv/internal/trust/policy"
)

const (
	slsaV02PredicateType = "https://slsa.dev/provenance/v0.2"
	spdxPredicateType    = "https://spdx.dev/Document"
)

// TestBuildSignVerify builds trainenv's images from binaries built by hack/build.sh (as
// `make build` does), pushes them to the real registry on loopback, signs and attests them
// with the real cosign CLI, and checks that trainenv's verifier (policy-controller's engine)
// and the cosign CLI accept them under a policy that requires the key, the provenance of
// this builder and an SBOM, and refuse them under one that requires another builder or key.
// A second run changes no digest and adds no signature.
func TestBuildSignVerify(t *testing.T) {
	cosignBin := distribution.Tool(t, "COSIGN")
	host := distribution.Start(t, distribution.Tool(t, "DOCKER_REGISTRY"))
	g := NewWithT(t)
	bin := buildBinaries(t)
	state := t.TempDir()
	o := options{registry: host, binDir: bin, state: state, cosign: cosignBin, images: "manager,node-agent,tools",
		tag: "dev", prefix: "trainenv", source: "../..", builderID: DefaultBuilderID, insecure: true, sign: true}
	env, err := run(o, testLog{t})
	g.Expect(err).NotTo(HaveOccurred())
	t.Log("\n" + env)
	out := readOutputs(t, state)
	g.Expect(out.Images).To(HaveLen(3))
	pub, err := os.ReadFile(out.SigningPublicKey)
	g.Expect(err).NotTo(HaveOccurred())

	glob := host + "/trainenv/**"
	required := imagePolicy("trainenv-images", glob, string(pub), DefaultBuilderID)
	otherBuilder := imagePolicy("other-builder", glob, string(pub), "https://ci.example.com/builder@v1")
	otherPub := otherPublicKey(t, cosignBin)
	otherKey := imagePolicy("other-key", glob, otherPub, DefaultBuilderID)
	otherKey.Spec.Authorities[0].Attestations = nil
	otherKeyWithAttestations := imagePolicy("other-key-attestations", glob, otherPub, DefaultBuilderID)
	for n, r := range out.Images {
		t.Run(n, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(r.Ref).To(HavePrefix(host + "/trainenv/" + n + "@sha256:"))
			verify := func(p pcv1alpha1.ClusterImagePolicy) trust.Verdict {
				v, err := policy.New(&policy.StaticSource{Policies: []pcv1alpha1.ClusterImagePolicy{p}}, policy.Options{}).
					Verify(context.Background(), trust.Request{Image: r.Ref})
				g.Expect(err).NotTo(HaveOccurred())
				return v
			}
			v := verify(required)
			g.Expect(v.Reason).To(Equal(trainenvv1.ReasonVerified), v.Message)
			g.Expect(v.Allowed()).To(BeTrue())
			g.Expect(verify(otherBuilder).Reason).To(Equal(trainenvv1.ReasonAttestationPolicyFailed))
			g.Expect(verify(otherKey).Reason).To(Equal(trainenvv1.ReasonUntrustedSigner))
			// Attestations signed by another key are none for this authority.
			g.Expect(verify(otherKeyWithAttestations).Reason).To(Equal(trainenvv1.ReasonAttestationMissing))

			c := cosignCLI{bin: cosignBin, dir: state, insecure: true, log: t.Logf}
			got, err := c.run("verify", "--key", c.PubKey(), "--insecure-ignore-tlog=true", "--allow-insecure-registry", r.Ref)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(ContainSubstring("The signatures were verified against the specified public key"))
			for typ, want := range map[string]string{predicateSLSA: `"id": "` + DefaultBuilderID, predicateSPDX: `"spdxVersion": "SPDX-2.3"`} {
				got, err := c.run("verify-attestation", "--key", c.PubKey(), "--type", typ, "--insecure-ignore-tlog=true", "--allow-insecure-registry", r.Ref)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(decodedPredicates(t, got)).To(ContainSubstring(want), typ)
			}
		})
	}

	// A warm run: the same digests, no second signature or attestation.
	_, err = run(o, testLog{t})
	g.Expect(err).NotTo(HaveOccurred())
	again := readOutputs(t, state)
	for n, r := range out.Images {
		g.Expect(again.Images[n].Digest).To(Equal(r.Digest), "%s is reproducible", n)
		g.Expect(layerCount(t, r, ".sig")).To(Equal(1), "%s: one signature", n)
		g.Expect(layerCount(t, r, ".att")).To(Equal(2), "%s: one SBOM and one provenance", n)
	}

	runInImages(t, out)
}

// runInImages runs the images' programs in their own root file systems, as their users:
// the node agent finds its glibc, the tools image's installer copies the entrypoint and the
// preflight as the tools init container has it do (uid 1000, like the environment's pod).
func runInImages(t *testing.T, out outputs) {
	if os.Geteuid() != 0 {
		t.Log("not root: skipping the chroot checks of the images' programs")
		return
	}
	g := NewWithT(t)
	agent := extract(t, out.Images["node-agent"].Ref)
	got, err := exec.Command("chroot", "--userspec=65532:65532", agent, "/node-agent", "-h").CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(got))
	g.Expect(string(got)).To(ContainSubstring("-node-name"))

	tools := extract(t, out.Images["tools"].Ref)
	g.Expect(os.MkdirAll(filepath.Join(tools, "trainenv"), 0o777)).To(Succeed())
	g.Expect(os.Chmod(filepath.Join(tools, "trainenv"), 0o777)).To(Succeed())
	// The installer finds the preflight next to itself through /proc/self/exe: a /proc of
	// its own, in a mount namespace of its own, as a container has.
	g.Expect(os.Mkdir(filepath.Join(tools, "proc"), 0o555)).To(Succeed())
	got, err = exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount -t proc proc "$0/proc" && exec chroot --userspec=1000:1000 "$0" "$@"`,
		tools, "/usr/local/bin/trainenv-entrypoint", "install", "/trainenv/bin").CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(got))
	for _, f := range []string{"entrypoint", "preflight"} {
		st, err := os.Stat(filepath.Join(tools, "trainenv/bin", f))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(st.Mode().Perm() & 0o111).NotTo(BeZero())
	}
}

// extract pulls ref and unpacks its file system into a new directory.
func extract(t *testing.T, ref string) string {
	t.Helper()
	dir := t.TempDir()
	if err := unpack(ref, dir, true); err != nil {
		t.Fatal(err)
	}
	return dir
}

func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, target := range []string{"manager", "node-agent", "entrypoint", "preflight"} {
		out, err := exec.Command("../build.sh", target, dir).CombinedOutput()
		if err != nil {
			t.Fatalf("hack/build.sh %s: %v\n%s", target, err, out)
		}
	}
	return dir
}

func imagePolicy(policyName, glob, publicPEM, builderID string) pcv1alpha1.ClusterImagePolicy {
	return pcv1alpha1.ClusterImagePolicy{
		ObjectMeta: metav1.ObjectMeta{Name: policyName, UID: ktypes.UID("uid-" + policyName), Generation: 1},
		Spec: pcv1alpha1.ClusterImagePolicySpec{
			Images: []pcv1alpha1.ImagePattern{{Glob: glob}},
			Authorities: []pcv1alpha1.Authority{{
				Name: "dev-key", Key: &pcv1alpha1.KeyRef{Data: publicPEM},
				Attestations: []pcv1alpha1.Attestation{
					{Name: "provenance", PredicateType: slsaV02PredicateType,
						Policy: &pcv1alpha1.Policy{Type: "cue", Data: `predicate: builder: id: "` + builderID + `"`}},
					{Name: "sbom", PredicateType: spdxPredicateType,
						Policy: &pcv1alpha1.Policy{Type: "cue", Data: `predicate: spdxVersion: "SPDX-2.3"`}},
				},
			}},
		},
	}
}

func otherPublicKey(t *testing.T, cosignBin string) string {
	t.Helper()
	c := cosignCLI{bin: cosignBin, dir: t.TempDir(), log: t.Logf}
	if err := c.ensureKey(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(c.PubKey())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readOutputs(t *testing.T, state string) outputs {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(state, "images.json"))
	if err != nil {
		t.Fatal(err)
	}
	var o outputs
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	return o
}

// layerCount counts the layers of the image's cosign .sig or .att manifest.
func layerCount(t *testing.T, r result, suffix string) int {
	t.Helper()
	tag, err := name.NewTag(r.Repository+":"+strings.Replace(r.Digest, ":", "-", 1)+suffix, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(tag)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return len(m.Layers)
}

// decodedPredicates decodes the DSSE envelopes `cosign verify-attestation` prints (one JSON
// object per line, the statement base64 in payload).
func decodedPredicates(t *testing.T, out string) string {
	t.Helper()
	var sb strings.Builder
	for _, line := range strings.Split(out, "\n") {
		var env struct {
			Payload []byte `json:"payload"`
		}
		if json.Unmarshal([]byte(line), &env) == nil && len(env.Payload) > 0 {
			var v any
			if json.Unmarshal(env.Payload, &v) == nil {
				b, _ := json.MarshalIndent(v, "", "  ")
				sb.Write(b)
			}
		}
	}
	return sb.String()
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
