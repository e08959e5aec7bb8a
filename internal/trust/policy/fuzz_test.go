package policy

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/policy-controller/pkg/apis/config"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	webhookcip "github.com/sigstore/policy-controller/pkg/webhook/clusterimagepolicy"
)

// FuzzPolicyGlob drives policy-controller's image matching as the verifier calls it (a
// ClusterImagePolicy's images[].glob against a pinned reference). Globs are written by
// people and images by anyone; matching must not panic, a glob without wildcards matches
// only itself, and a single "*" never crosses a "/" (team/* must not cover team/x/evil).
func FuzzPolicyGlob(f *testing.F) {
	const digest = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, seed := range [][2]string{
		{"registry.example.com/team/*", "registry.example.com/team/app"},
		{"registry.example.com/team/*", "registry.example.com/team/x/evil"},
		{"registry.example.com/team/**", "registry.example.com/team/x/y"},
		{"*", "ubuntu"}, {"*/*", "me/app"}, {"index.docker.io/library/*", "busybox"},
		{"registry.example.com/team/app", "registry.example.com/team/app"},
		{"[a-z]", "a"}, {"registry.example.com:5000/**", "registry.example.com:5000/x"}, {"**", "x"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, glob, image string) {
		ref, err := name.NewDigest(image+digest, name.WeakValidation)
		if err != nil {
			return
		}
		cfg := config.ImagePolicyConfig{Policies: map[string]webhookcip.ClusterImagePolicy{
			"p": {Images: []pcv1alpha1.ImagePattern{{Glob: glob}}},
		}}
		matched, err := cfg.GetMatchingPolicies(ref.Name(), "Pod", "v1", nil)
		if err != nil || len(matched) == 0 {
			return
		}
		// What the glob was compared with: the full name, or (policy-controller's
		// compatibility rule) the reference as written.
		names := []string{ref.Name(), image + digest}
		switch {
		case glob == "*" || glob == "*/*":
			// policy-controller's shorthands for Docker Hub.
		case !strings.Contains(glob, "*"):
			if glob != names[0] && glob != names[1] {
				t.Fatalf("glob %q without wildcards matched %q", glob, names)
			}
		case strings.HasSuffix(glob, "/*") && !strings.Contains(strings.TrimSuffix(glob, "/*"), "*"):
			prefix := strings.TrimSuffix(glob, "*")
			for _, n := range names {
				if rest, ok := strings.CutPrefix(n, prefix); ok && !strings.Contains(rest, "/") {
					return
				}
			}
			t.Fatalf("glob %q matched %q across a /", glob, names)
		}
	})
}
