package main

import (
	"archive/tar"
	"io"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestImageHoldsTheBinaryAsEntrypoint(t *testing.T) {
	content := []byte("#!binary")
	img, err := image("podprobe", content, "1000:1000")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Config.Entrypoint; len(got) != 1 || got[0] != "/podprobe" {
		t.Errorf("entrypoint %q, want [/podprobe]", got)
	}
	if cfg.Config.User != "1000:1000" || cfg.OS != "linux" {
		t.Errorf("user %q os %q, want 1000:1000 linux", cfg.Config.User, cfg.OS)
	}
	if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
		t.Errorf("media type %s, want an OCI manifest", mt)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %d (%v), want 1", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	h, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(tr)
	if h.Name != "podprobe" || h.Mode != 0o755 || string(got) != string(content) {
		t.Errorf("layer holds %s mode %o %q, want podprobe 755 %q", h.Name, h.Mode, got, content)
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Errorf("layer holds more than the binary: %v", err)
	}
}

func TestImageDigestIsReproducible(t *testing.T) {
	a, _ := image("pause", []byte("x"), "65535:65535")
	b, _ := image("pause", []byte("x"), "65535:65535")
	c, _ := image("pause", []byte("y"), "65535:65535")
	da, _ := a.Digest()
	db, _ := b.Digest()
	dc, _ := c.Digest()
	if da != db {
		t.Errorf("same binary, digests %s and %s", da, db)
	}
	if da == dc {
		t.Error("different binaries, same digest")
	}
}
