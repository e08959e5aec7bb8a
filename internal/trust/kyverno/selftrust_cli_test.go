package kyverno

import (
	"context"
	"os"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/distribution"
	"github.com/trainenv/trainenv/internal/trust"
	"github.com/trainenv/trainenv/internal/trust/policy"
	"github.com/trainenv/trainenv/internal/workload"
)

// Kyverno's own CLI evaluates the self-trust policy and a generated policy on real pods,
// with images in the real distribution registry signed by the real cosign v3 CLI:
// trainenv's tools image (an environment pod's init container) and the manager's pod pass
// when signed by the release key and fail when not; a pod that runs none of trainenv's
// images passes the self-trust policy whatever its images. The same ClusterImagePolicy verifies the
// signed tools image in trainenv's own verifier. It also records what Kyverno v1.19.1 does
// with a user image signed as a sigstore bundle (cosign v3's default, a referrer under the
// referrers tag of distribution 2.8): see bundleVerdict.
func TestKyvernoCLISelfTrustAndBundles(t *testing.T) {
	cli := os.Getenv(EnvKyvernoCLI)
	if cli == "" {
		t.Skipf("set %s to the Kyverno CLI: make kyverno-check builds it and runs this test", EnvKyvernoCLI)
	}
	g := NewWithT(t)
	ctx := context.Background()
	w := distribution.NewCosign3World(t)
	legacy := func(key, img string) {
		w.Run(t, "sign", "--key", key+".key", "--new-bundle-format=false", "--use-signing-config=false", "--tlog-upload=false",
			"--allow-insecure-registry", "--yes", img)
	}
	tools, unsignedTools, foreignTools := w.Push(t, "trainenv/manager"), w.Push(t, "trainenv/unsigned"), w.Push(t, "trainenv/foreign")
	legacy("release", tools)
	legacy("other", foreignTools)
	userLegacy, userBundle := w.Push(t, "team/legacy"), w.Push(t, "team/bundle")
	legacy("release", userLegacy)
	w.SignBundle(t, "release", userBundle)

	release := w.PublicKey(t, "release")
	selfCIP, selfIVP, err := SelfTrustPolicies(ctx, SelfTrust{Images: []string{w.Host + "/trainenv/**"}, PublicKey: release})
	g.Expect(err).NotTo(HaveOccurred())
	v := policy.New(&policy.StaticSource{Policies: []pcv1alpha1.ClusterImagePolicy{*selfCIP}}, policy.Options{})
	for img, reason := range map[string]string{tools: trainenvv1.ReasonVerified, unsignedTools: trainenvv1.ReasonNoSignature, foreignTools: trainenvv1.ReasonUntrustedSigner} {
		got, err := v.Verify(ctx, trust.Request{Image: img})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got.Reason).To(Equal(reason), "trainenv's verifier with %s: %s", SelfTrustName, got.Message)
	}

	team, err := Generate(ctx, &policy.StaticSource{Policies: []pcv1alpha1.ClusterImagePolicy{
		{ObjectMeta: metav1.ObjectMeta{Name: "team"}, Spec: pcv1alpha1.ClusterImagePolicySpec{
			Images:      []pcv1alpha1.ImagePattern{{Glob: w.Host + "/team/**"}},
			Authorities: []pcv1alpha1.Authority{{Name: "release", Key: &pcv1alpha1.KeyRef{Data: release}}}}},
	}})
	g.Expect(err).NotTo(HaveOccurred())
	selfPolicy, teamPolicy := writeYAML(t, w.Dir, "policy-self.yaml", selfIVP), writeYAML(t, w.Dir, "policy-team.yaml", team[0].Policy)

	pods := map[string]*corev1.Pod{
		"env-signed-tools":   trainenvPodWithTools("env-signed-tools", userLegacy, tools),
		"env-unsigned-tools": trainenvPodWithTools("env-unsigned-tools", userLegacy, unsignedTools),
		"env-foreign-tools":  trainenvPodWithTools("env-foreign-tools", userLegacy, foreignTools),
		"env-bundle":         trainenvPodWithTools("env-bundle", userBundle, tools),
		"manager":            plainPod("manager", tools),
		"manager-unsigned":   plainPod("manager-unsigned", unsignedTools),
		"other":              plainPod("other", w.Push(t, "team/unsigned")),
	}
	// One pod and one policy per run of the CLI: Kyverno v1.19.1 hangs on a pod that two
	// ImageValidatingPolicies judge ("all goroutines are asleep - deadlock!" in its image
	// data loader, which keeps a read lock whenever it finds an image it already fetched:
	// kyverno/kyverno#15403, fixed in Kyverno's tree by #15404 but not in the kyverno/sdk
	// copy v1.19.1 uses). See docs/platform-admin.md.
	got := map[string][]verdict{}
	for name, p := range pods {
		file := writeYAML(t, w.Dir, "pod-"+name+".yaml", p)
		for _, pol := range []string{selfPolicy, teamPolicy} {
			out := kyvernoApply(t, cli, w.Dir, []string{pol}, []string{file})
			if !strings.Contains(string(out), "{") {
				continue // the policy does not apply to the pod: no report
			}
			for k, v := range reportResults(t, out) {
				got[k] = append(got[k], v...)
			}
		}
	}
	notSelf := "not signed by trainenv's release signer"
	want := map[string][]verdict{
		"env-signed-tools":   {{"trainenv-self", "pass", ""}, {"trainenv-team", "pass", ""}},
		"env-unsigned-tools": {{"trainenv-self", "fail", notSelf}, {"trainenv-team", "pass", ""}},
		"env-foreign-tools":  {{"trainenv-self", "fail", notSelf}, {"trainenv-team", "pass", ""}},
		"env-bundle":         {{"trainenv-self", "pass", ""}, bundleVerdict},
		"manager":            {{"trainenv-self", "pass", ""}},
		"manager-unsigned":   {{"trainenv-self", "fail", notSelf}},
		// An unsigned image that is not trainenv's is not checked for trainenv's signature:
		// the images the validations see are those matchImageReferences selects.
		"other": {{"trainenv-self", "pass", ""}},
	}
	for name, vs := range want {
		var matchers []any
		for _, v := range vs {
			matchers = append(matchers, And(HaveField("Policy", v.Policy), HaveField("Result", v.Result), HaveField("Message", ContainSubstring(v.Message))))
		}
		g.Expect(got[name]).To(ConsistOf(matchers...), name)
	}
}

// bundleVerdict is what Kyverno v1.19.1 says of a user image signed by cosign v3 with its
// defaults (a sigstore bundle, key-signed, offline, as a referrer under distribution 2.8's
// referrers tag), under the generated policy that trusts that key: it verifies (Kyverno's
// cosign attestor finds bundles among the referrers). If a Kyverno release changes that,
// this test fails: update the expectation and docs/platform-admin.md.
var bundleVerdict = verdict{"trainenv-team", "pass", ""}

// trainenvPodWithTools is an environment's pod as trainenv makes it for a CPU environment
// with Jupyter: the tools image in the init container that copies the entrypoint, the
// user's image in the container. (A GPU environment's pod also runs the user's image as
// its preflight init container: see the note on Kyverno's image data loader in
// docs/platform-admin.md.)
func trainenvPodWithTools(env, image, tools string) *corev1.Pod {
	p := plainPod(env, image)
	p.Namespace = "ml"
	p.Labels = map[string]string{workload.LabelEnvironment: env}
	p.Spec.InitContainers = []corev1.Container{{Name: "trainenv-tools", Image: tools}}
	return p
}

// plainPod is a pod of one container that trainenv did not make (the manager's, say).
func plainPod(name, image string) *corev1.Pod {
	return &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: strings.ReplaceAll(name, "_", "-") + "-0", Namespace: "trainenv-system"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: image}}}}
}
