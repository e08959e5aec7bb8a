package main

import (
	"strings"
	"testing"
)

// The dev cluster skips re-pushing when the recorded digest is still in the registry, and
// samples may pin it, so the image must come out byte-identical every time.
func TestBuildIsDeterministic(t *testing.T) {
	a, _, err := build("12.4.1")
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := build("12.4.1")
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Fatalf("index digest differs between builds: %s vs %s", da, db)
	}
}

func TestImagesCarryCUDAMetadata(t *testing.T) {
	idx, images, err := build("12.4.1")
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 2 || m.Manifests[0].Platform.Architecture != "amd64" || m.Manifests[1].Platform.Architecture != "arm64" {
		t.Fatalf("index manifests = %+v, want linux/amd64 and linux/arm64", m.Manifests)
	}
	for _, img := range images {
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		env := strings.Join(cfg.Config.Env, "\n")
		for _, want := range []string{"CUDA_VERSION=12.4.1", "NVIDIA_REQUIRE_CUDA=cuda>=12.4 brand=tesla,driver>=470,driver<471 ", "PATH="} {
			if !strings.Contains(env, want) {
				t.Errorf("%s: env lacks %q", cfg.Architecture, want)
			}
		}
		if cfg.Config.User != "1000" {
			t.Errorf("%s: user = %q, want 1000", cfg.Architecture, cfg.Config.User)
		}
	}
	d0, _ := images[0].Digest()
	d1, _ := images[1].Digest()
	if d0 == d1 {
		t.Error("amd64 and arm64 images have the same digest")
	}
}

// Copied from the config of nvidia/cuda:12.4.1-base-ubuntu22.04 (gitlab.com/nvidia/container-images/cuda,
// dist/12.4.1/ubuntu2204/base/Dockerfile): the sample must carry the real thing.
const nvidiaCUDA1241Require = "cuda>=12.4 brand=tesla,driver>=470,driver<471 brand=unknown,driver>=470,driver<471 brand=nvidia,driver>=470,driver<471 brand=nvidiartx,driver>=470,driver<471 brand=geforce,driver>=470,driver<471 brand=geforcertx,driver>=470,driver<471 brand=quadro,driver>=470,driver<471 brand=quadrortx,driver>=470,driver<471 brand=titan,driver>=470,driver<471 brand=titanrtx,driver>=470,driver<471 brand=tesla,driver>=525,driver<526 brand=unknown,driver>=525,driver<526 brand=nvidia,driver>=525,driver<526 brand=nvidiartx,driver>=525,driver<526 brand=geforce,driver>=525,driver<526 brand=geforcertx,driver>=525,driver<526 brand=quadro,driver>=525,driver<526 brand=quadrortx,driver>=525,driver<526 brand=titan,driver>=525,driver<526 brand=titanrtx,driver>=525,driver<526 brand=tesla,driver>=535,driver<536 brand=unknown,driver>=535,driver<536 brand=nvidia,driver>=535,driver<536 brand=nvidiartx,driver>=535,driver<536 brand=geforce,driver>=535,driver<536 brand=geforcertx,driver>=535,driver<536 brand=quadro,driver>=535,driver<536 brand=quadrortx,driver>=535,driver<536 brand=titan,driver>=535,driver<536 brand=titanrtx,driver>=535,driver<536"

func TestRequireCUDAMatchesNvidiaImages(t *testing.T) {
	if got := requireCUDA("12.4", 470, 525, 535); got != nvidiaCUDA1241Require {
		t.Errorf("requireCUDA = %q\nwant          %q", got, nvidiaCUDA1241Require)
	}
}

func TestOtherCUDAVersions(t *testing.T) {
	_, images, err := build("13.0.0")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := images[0].ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	env := strings.Join(cfg.Config.Env, "\n")
	for _, want := range []string{"CUDA_VERSION=13.0.0\n", "NVIDIA_REQUIRE_CUDA=cuda>=13.0\n"} {
		if !strings.Contains(env, want) {
			t.Errorf("env lacks %q:\n%s", want, env)
		}
	}
	if requirement("12.4.1") != nvidiaCUDA1241Require {
		t.Error("12.4.1 must keep the real image's requirement")
	}
}
