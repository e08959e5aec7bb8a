package registry_test

import (
	"strings"
	"testing"

	"github.com/trainenv/trainenv/internal/registry"
)

// FuzzParseReference: spec.image is user input. Whatever parses must pin to a digest
// reference of the same repository that parses again, and render back to itself.
func FuzzParseReference(f *testing.F) {
	for _, seed := range []string{
		"pytorch/pytorch", "registry.example.com:5000/team/pytorch:2.4-cuda12.4", "host:5000/repo:tag@sha256:" + sha,
		"localhost/x@sha256:" + sha, "", "UPPER/case", "a:b:c", "[::1]:5000/x:y", "x@sha512:" + sha + sha, "ü/x",
		strings.Repeat("a/", 200) + "b",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := registry.ParseReference(s)
		if err != nil {
			if !strings.Contains(err.Error(), "is not a valid reference") {
				t.Fatalf("error without context: %v", err)
			}
			return
		}
		again, err := registry.ParseReference(ref.String())
		if err != nil || again.String() != ref.String() {
			t.Fatalf("%q parses to %q, which does not parse back: %v", s, ref, err)
		}
		pinned := registry.Pinned(ref, "sha256:"+sha)
		p, err := registry.ParseReference(pinned)
		if err != nil || !registry.IsDigest(p) || p.Context().String() != ref.Context().String() {
			t.Fatalf("pinned %q of %q: %v", pinned, s, err)
		}
		_ = registry.ShortDigest(s)
	})
}
