// Package registry resolves image references to pinned digests and reads image configs,
// with go-containerregistry. It never splits reference strings by hand.
package registry

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ParseReference parses an image reference (tag or digest). Docker Hub short names are
// expanded as docker does (pytorch/pytorch → index.docker.io/pytorch/pytorch:latest).
func ParseReference(image string) (name.Reference, error) {
	ref, err := name.ParseReference(image)
	if err != nil {
		return nil, fmt.Errorf("image %q is not a valid reference: %w", image, err)
	}
	return ref, nil
}

// IsDigest reports whether the reference names a digest, so that there is no tag to follow.
func IsDigest(ref name.Reference) bool {
	_, ok := ref.(name.Digest)
	return ok
}

// Pinned returns the repository@digest form that the workload runs.
func Pinned(ref name.Reference, digest string) string {
	return ref.Context().Digest(digest).String()
}

// ShortDigest returns "sha256:" and the first 12 hex digits, for display.
func ShortDigest(digest string) string {
	algo, hex, ok := strings.Cut(digest, ":")
	if !ok || len(hex) <= 12 {
		return digest
	}
	return algo + ":" + hex[:12]
}

// ParsePlatform parses os/arch[/variant].
func ParsePlatform(s string) (v1.Platform, error) {
	p, err := v1.ParsePlatform(s)
	if err != nil {
		return v1.Platform{}, fmt.Errorf("platform %q: %w", s, err)
	}
	return *p, nil
}
