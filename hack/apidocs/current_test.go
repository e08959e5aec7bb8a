package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestCheckedInReferenceIsCurrent regenerates docs/api.md from the CRDs into a temporary
// directory, as `make docs` does, and fails when the checked-in file differs: an API change
// must come with its regenerated reference.
func TestCheckedInReferenceIsCurrent(t *testing.T) {
	root := filepath.Join("..", "..")
	crds, err := LoadCRDs(filepath.Join(root, "config", "crd", "bases"))
	if err != nil {
		t.Fatal(err)
	}
	// The same source name `make docs` passes, so that the header matches.
	want, err := Render(crds, "config/crd/bases")
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(t.TempDir(), "api.md")
	if err := os.WriteFile(tmp, want, 0o644); err != nil {
		t.Fatal(err)
	}
	regenerated, err := os.ReadFile(tmp)
	if err != nil {
		t.Fatal(err)
	}
	have, err := os.ReadFile(filepath.Join(root, "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, regenerated) {
		t.Fatalf("docs/api.md is stale: run `make docs` and commit it (first difference at line %d)", firstDiffLine(have, regenerated))
	}
}

func firstDiffLine(a, b []byte) int {
	la, lb := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	for i := 0; i < len(la) && i < len(lb); i++ {
		if !bytes.Equal(la[i], lb[i]) {
			return i + 1
		}
	}
	return min(len(la), len(lb)) + 1
}
