// Command sampleimage builds a small stand-in for a CUDA/PyTorch training image without
// Docker and pushes it to a registry: an OCI index for linux/amd64 and linux/arm64 under
// each --tag, and each platform's manifest alone under "<first tag>-<arch>".
//
// The config carries what real nvidia/cuda images carry (CUDA_VERSION, NVIDIA_REQUIRE_CUDA,
// NVIDIA_VISIBLE_DEVICES, ...), so code that reads CUDA requirements from image metadata can
// be exercised against it. Everything is deterministic (fixed timestamps, no randomness), so
// pushing twice yields the same digests.
//
// usage: go run ./e2e/sampleimage --registry 127.0.0.1:5001 --repo trainenv/pytorch-cuda --tag 12.4,latest
//
//	go run ./e2e/sampleimage --cuda 13.0.0 --tag 13.0    (another CUDA version, for the GPU pools e2e)
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// created is fixed so that digests do not change between runs.
var created = time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC)

var platforms = []v1.Platform{
	{OS: "linux", Architecture: "amd64"},
	{OS: "linux", Architecture: "arm64", Variant: "v8"},
}

func main() {
	registry := flag.String("registry", "127.0.0.1:5001", "registry host:port")
	repo := flag.String("repo", "trainenv/pytorch-cuda", "repository inside the registry")
	tags := flag.String("tag", "12.4,latest", "comma-separated tags for the multi-arch index")
	cuda := flag.String("cuda", "12.4.1", "the image's CUDA_VERSION; NVIDIA_REQUIRE_CUDA follows from it (see requirement)")
	insecure := flag.Bool("insecure", true, "talk plain HTTP to the registry (the local dev registry has no TLS)")
	digestFile := flag.String("digest-file", "", "if set, write the index digest (sha256:...) to this file")
	flag.Parse()

	if err := run(*registry, *repo, *cuda, strings.Split(*tags, ","), *insecure, *digestFile); err != nil {
		fmt.Fprintln(os.Stderr, "sampleimage:", err)
		os.Exit(1)
	}
}

func run(registry, repo, cuda string, tags []string, insecure bool, digestFile string) error {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	repository, err := name.NewRepository(registry+"/"+repo, opts...)
	if err != nil {
		return err
	}

	idx, images, err := build(cuda)
	if err != nil {
		return err
	}

	// Single-platform tags first, so the index never points at blobs that are not there yet.
	for i, p := range platforms {
		ref := repository.Tag(tags[0] + "-" + p.Architecture)
		if err := remote.Write(ref, images[i]); err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
		d, err := images[i].Digest()
		if err != nil {
			return err
		}
		fmt.Printf("%s\t%s\t%s\n", ref, d, p.String())
	}

	d, err := idx.Digest()
	if err != nil {
		return err
	}
	for _, t := range tags {
		ref := repository.Tag(t)
		if err := remote.WriteIndex(ref, idx); err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
		fmt.Printf("%s\t%s\tindex\n", ref, d)
	}
	fmt.Printf("%s@%s\n", repository, d)

	if digestFile != "" {
		return os.WriteFile(digestFile, []byte(d.String()+"\n"), 0o644)
	}
	return nil
}

// build returns the multi-arch index of a CUDA version and its per-platform images, in
// platforms' order.
func build(cudaVersion string) (v1.ImageIndex, []v1.Image, error) {
	common, err := layer(map[string]string{
		"opt/trainenv/README.txt": "Sample training image for trainenv development. It runs nothing real.\n",
		"opt/trainenv/train.py":   "import os\nprint('CUDA', os.environ.get('CUDA_VERSION'), 'on', open('/etc/trainenv-release').read().strip())\n",
	})
	if err != nil {
		return nil, nil, err
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	images := make([]v1.Image, len(platforms))
	for i, p := range platforms {
		img, err := image(p, common, cudaVersion)
		if err != nil {
			return nil, nil, err
		}
		images[i] = img
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &platforms[i]},
		})
	}
	return idx, images, nil
}

// image assembles one platform's image: the shared layer plus a tiny per-platform layer,
// so that the two manifests (and their digests) really differ.
func image(p v1.Platform, common v1.Layer, cudaVersion string) (v1.Image, error) {
	own, err := layer(map[string]string{
		"etc/trainenv-release": fmt.Sprintf("trainenv sample %s/%s cuda %s\n", p.OS, p.Architecture, cudaVersion),
	})
	if err != nil {
		return nil, err
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: common, History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "sampleimage: /opt/trainenv"}},
		mutate.Addendum{Layer: own, History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "sampleimage: /etc/trainenv-release"}},
	)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture, cfg.Variant = p.OS, p.Architecture, p.Variant
	cfg.Created = v1.Time{Time: created}
	nvarch := map[string]string{"amd64": "x86_64", "arm64": "sbsa"}[p.Architecture]
	env := append([]string{
		"PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"NVARCH=" + nvarch,
		"NVIDIA_REQUIRE_CUDA=" + requirement(cudaVersion),
	}, runtimeEnv[cudaVersion]...)
	env = append(env,
		"CUDA_VERSION="+cudaVersion,
		"LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64",
		"NVIDIA_VISIBLE_DEVICES=all",
		"NVIDIA_DRIVER_CAPABILITIES=compute,utility",
		"PYTORCH_VERSION=2.4.0",
	)
	cfg.Config = v1.Config{
		User:       "1000",
		WorkingDir: "/opt/trainenv",
		Cmd:        []string{"python3", "/opt/trainenv/train.py"},
		Env:        env,
		Labels: map[string]string{
			"org.opencontainers.image.title":       "pytorch-cuda",
			"org.opencontainers.image.description": "trainenv sample image (not a real PyTorch image)",
			"org.opencontainers.image.version":     cudaVersion,
			"org.opencontainers.image.source":      "https://github.com/trainenv/trainenv/tree/main/e2e/sampleimage",
			"com.nvidia.cuda.version":              cudaVersion,
		},
	}
	return mutate.ConfigFile(img, cfg)
}

// runtimeEnv is the CUDA runtime's package variables of the real image of a version.
var runtimeEnv = map[string][]string{
	"12.4.1": {"NV_CUDA_CUDART_VERSION=12.4.127-1", "NV_CUDA_COMPAT_PACKAGE=cuda-compat-12-4"},
}

// driverBranches are the older driver branches whose forward-compatibility alternatives
// real nvidia/cuda images of a version list (12.4.1: checked byte for byte in the test).
var driverBranches = map[string][]int{"12.4": {470, 525, 535}}

// requirement is the NVIDIA_REQUIRE_CUDA of an image of CUDA version v (e.g. 12.4.1). For
// versions without a driverBranches entry it is the cuda>= term alone: their brand
// alternatives could only hold on nodes labelled with a GPU brand, which the simulated
// nodes (GFD labels) are not, so leaving them out changes no placement there.
func requirement(v string) string {
	parts := strings.SplitN(v, ".", 3)
	majorMinor := parts[0] + "." + parts[1]
	return requireCUDA(majorMinor, driverBranches[majorMinor]...)
}

// requireCUDA spells NVIDIA_REQUIRE_CUDA the way nvidia/cuda images do: the minimum CUDA
// version, then for each older driver branch that forward compatibility supports, one
// "brand=B,driver>=N,driver<N+1" constraint per GPU brand. For 12.4 with branches 470, 525
// and 535 this is, byte for byte, what nvidia/cuda:12.4.1-* images carry (31 clauses).
func requireCUDA(cuda string, driverBranches ...int) string {
	brands := []string{"tesla", "unknown", "nvidia", "nvidiartx", "geforce", "geforcertx", "quadro", "quadrortx", "titan", "titanrtx"}
	parts := []string{"cuda>=" + cuda}
	for _, d := range driverBranches {
		for _, b := range brands {
			parts = append(parts, fmt.Sprintf("brand=%s,driver>=%d,driver<%d", b, d, d+1))
		}
	}
	return strings.Join(parts, " ")
}

// layer makes a gzip'd OCI layer holding the given files (path -> content), with their
// parent directories, fixed timestamps and root ownership.
func layer(files map[string]string) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	seen := map[string]bool{}
	for _, path := range slices.Sorted(maps.Keys(files)) {
		dirs := strings.Split(path, "/")
		for i := 1; i < len(dirs); i++ {
			dir := strings.Join(dirs[:i], "/") + "/"
			if seen[dir] {
				continue
			}
			seen[dir] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: created}); err != nil {
				return nil, err
			}
		}
		body := files[path]
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: path, Mode: 0o644, Size: int64(len(body)), ModTime: created}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(tw, body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
