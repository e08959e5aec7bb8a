// Command binimage pushes a single-binary OCI image without Docker: one layer holding a
// static binary at /NAME, entrypoint /NAME, a numeric non-root user. The local cluster's real
// node runs its sandbox ("pause") image and its check pod (e2e/podprobe) this way: no image
// can be pulled from the internet there. Timestamps are fixed, so the same binary always
// gives the same digest.
//
// usage: binimage --binary bin/pause --image 127.0.0.1:5001/trainenv/pause:3.10 [--digest-file F]
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

var created = time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC)

func main() {
	binary := flag.String("binary", "", "path of the static binary; it lands at /BASENAME")
	user := flag.String("user", "65535:65535", "the image's numeric UID:GID")
	ref := flag.String("image", "", "where to push, REGISTRY/REPO:TAG")
	insecure := flag.Bool("insecure", true, "talk plain HTTP to the registry (the local dev registry has no TLS)")
	digestFile := flag.String("digest-file", "", "if set, write the manifest digest (sha256:...) to this file")
	flag.Parse()
	if *binary == "" || *ref == "" {
		fmt.Fprintln(os.Stderr, "usage: binimage --binary FILE --image REGISTRY/REPO:TAG [--user UID:GID] [--digest-file F]")
		os.Exit(2)
	}
	if err := run(*binary, *ref, *user, *insecure, *digestFile); err != nil {
		fmt.Fprintln(os.Stderr, "binimage:", err)
		os.Exit(1)
	}
}

func run(binary, ref, user string, insecure bool, digestFile string) error {
	content, err := os.ReadFile(binary)
	if err != nil {
		return err
	}
	img, err := image(filepath.Base(binary), content, user)
	if err != nil {
		return err
	}
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	tag, err := name.NewTag(ref, opts...)
	if err != nil {
		return err
	}
	if err := remote.Write(tag, img); err != nil {
		return fmt.Errorf("push %s: %w", tag, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s@%s\n", tag.Context(), digest)
	if digestFile != "" {
		return os.WriteFile(digestFile, []byte(digest.String()+"\n"), 0o644)
	}
	return nil
}

// image is an OCI image whose only layer holds content at /NAME (mode 0755), its entrypoint.
func image(name string, content []byte, user string) (v1.Image, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{
		Name: name, Mode: 0o755, Size: int64(len(content)), ModTime: created, Typeflag: tar.TypeReg,
	}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(content); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return nil, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = runtime.GOARCH, "linux" // the binary is built for this machine
	cfg.Created = v1.Time{Time: created}
	cfg.Config.Entrypoint = []string{"/" + name}
	cfg.Config.User = user
	return mutate.ConfigFile(img, cfg)
}
