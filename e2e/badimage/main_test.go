package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/trainenv/trainenv/internal/testutil/registrytest"
)

// layerOf is a layer holding files (path → content).
func layerOf(t *testing.T, files map[string]string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for p, c := range files {
		if err := tw.WriteHeader(&tar.Header{Name: p, Mode: 0o755, Size: int64(len(c)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// flattened is the image's file system as a container sees it (whiteouts applied).
func flattened(t *testing.T, img v1.Image) map[string][]byte {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[strings.TrimPrefix(h.Name, "./")] = b
	}
}

// The derived images lack exactly what they should, pushed to and read back from a registry.
func TestDerive(t *testing.T) {
	reg := registrytest.New(t)
	passwd := "root:x:0:0:root:/root:/bin/bash\njovyan:x:1000:1000::/home/jovyan:/bin/bash\n"
	// The passwd of the lower layer is replaced by the upper one, as in a real image.
	base, err := mutate.AppendLayers(empty.Image,
		layerOf(t, map[string]string{"etc/passwd": "root:x:0:0::/:/bin/sh\n", "usr/bin/python3": "py"}),
		layerOf(t, map[string]string{"./etc/passwd": passwd, "usr/sbin/sshd": "sshd"}))
	if err != nil {
		t.Fatal(err)
	}
	from := reg.Host + "/team/pytorch:ref"
	fromRef, err := name.ParseReference(from, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(fromRef, base); err != nil {
		t.Fatal(err)
	}
	derived := func(args ...string) map[string][]byte {
		t.Helper()
		out := captureStdout(t, func() error {
			return derive(append([]string{"--from", from, "--to", reg.Host + "/team/pytorch:bad"}, args...))
		})
		ref, err := name.ParseReference(strings.TrimSpace(out), name.Insecure)
		if err != nil || !strings.Contains(out, "@sha256:") {
			t.Fatalf("derive printed %q, want REPOSITORY@DIGEST", out)
		}
		img, err := remote.Image(ref)
		if err != nil {
			t.Fatal(err)
		}
		return flattened(t, img)
	}

	noSSHD := derived("--without", "/usr/sbin/sshd", "--note", "no sshd")
	if _, ok := noSSHD["usr/sbin/sshd"]; ok {
		t.Error("--without /usr/sbin/sshd: sshd is still there")
	}
	if string(noSSHD["etc/passwd"]) != passwd || string(noSSHD["etc/trainenv-badinput"]) != "no sshd\n" {
		t.Errorf("--without changed more: passwd %q, note %q", noSSHD["etc/passwd"], noSSHD["etc/trainenv-badinput"])
	}

	noUser := derived("--without-uid", "1000")
	if got := string(noUser["etc/passwd"]); got != "root:x:0:0:root:/root:/bin/bash\n" {
		t.Errorf("--without-uid 1000: passwd %q, want the upper layer's without jovyan", got)
	}
	if string(noUser["usr/sbin/sshd"]) != "sshd" {
		t.Error("--without-uid lost sshd")
	}

	foreign := derived("--foreign", "/usr/sbin/sshd")
	f, err := elf.NewFile(bytes.NewReader(foreign["usr/sbin/sshd"]))
	if err != nil {
		t.Fatalf("--foreign: not an ELF program: %v", err)
	}
	if native := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[runtime.GOARCH]; f.Machine == native {
		t.Errorf("--foreign: built for %s, this machine's CPU", f.Machine)
	}
}

func TestPredicate(t *testing.T) {
	statement := func(typ, predicate string) string {
		p := `{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"` + typ + `","subject":[],"predicate":` + predicate + `}`
		return `{"payloadType":"application/vnd.in-toto+json","payload":"` + base64.StdEncoding.EncodeToString([]byte(p)) + `","signatures":[]}`
	}
	in := strings.Join([]string{statement("https://spdx.dev/Document", `{"spdxVersion":"SPDX-2.3"}`), statement("https://slsa.dev/provenance/v0.2", `{"builder":{"id":"x"}}`)}, "\n")
	var out bytes.Buffer
	if err := predicate(strings.NewReader(in), &out, "https://slsa.dev/provenance/v0.2"); err != nil || out.String() != `{"builder":{"id":"x"}}`+"\n" {
		t.Errorf("predicate = %q, %v", out.String(), err)
	}
	if err := predicate(strings.NewReader(in), io.Discard, "https://example.com/none"); err == nil {
		t.Error("a missing type was found")
	}
}

func captureStdout(t *testing.T, f func() error) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = w
	ferr := f()
	os.Stdout = saved
	w.Close()
	out, _ := io.ReadAll(r)
	if ferr != nil {
		t.Fatal(ferr)
	}
	return string(out)
}
