package registry_test

import (
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/trainenv/trainenv/internal/registry"
)

type v1Image = v1.Image

func TestParseReference(t *testing.T) {
	cases := []struct {
		in       string
		ok       bool
		isDigest bool
		repo     string
	}{
		{"pytorch/pytorch", true, false, "index.docker.io/pytorch/pytorch"},
		{"registry.example.com:5000/team/pytorch:2.4-cuda12.4", true, false, "registry.example.com:5000/team/pytorch"},
		{"localhost:5001/pytorch@sha256:" + sha, true, true, "localhost:5001/pytorch"},
		{"host:5000/repo:tag@sha256:" + sha, true, true, "host:5000/repo"},
		{"", false, false, ""},
		{"UPPER/case", false, false, ""},
		{"repo:bad tag", false, false, ""},
		{"repo@sha256:short", false, false, ""},
	}
	for _, tc := range cases {
		ref, err := registry.ParseReference(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseReference(%q) error = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if !tc.ok {
			continue
		}
		if registry.IsDigest(ref) != tc.isDigest || ref.Context().String() != tc.repo {
			t.Errorf("ParseReference(%q) = %s (digest=%v), want repo %s digest=%v", tc.in, ref.Context(), registry.IsDigest(ref), tc.repo, tc.isDigest)
		}
	}
}

const sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestShortDigest(t *testing.T) {
	if got := registry.ShortDigest("sha256:" + sha); got != "sha256:0123456789ab" {
		t.Fatalf("ShortDigest = %q", got)
	}
}
