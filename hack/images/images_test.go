package main

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/trainenv/trainenv/internal/entrypoint"
	"github.com/trainenv/trainenv/internal/workload"
)

var epoch = time.Unix(0, 0).UTC()

func TestLayerIsReproducible(t *testing.T) {
	g := NewWithT(t)
	entries := []entry{file("usr/local/bin/x", 0o755, "x"), dir("home/nonroot", 0o700, nonroot, nonroot)}
	a, err := layer(t.TempDir(), epoch, entries)
	g.Expect(err).NotTo(HaveOccurred())
	b, err := layer(t.TempDir(), epoch, reverse(entries))
	g.Expect(err).NotTo(HaveOccurred())
	da, _ := a.Digest()
	db, _ := b.Digest()
	g.Expect(da).To(Equal(db), "the same entries in another order give the same layer")
	mt, _ := a.MediaType()
	g.Expect(mt).To(Equal(types.OCILayer))

	files := tarEntries(t, a)
	g.Expect(sortedKeys(files)).To(Equal([]string{"home", "home/nonroot", "usr", "usr/local", "usr/local/bin", "usr/local/bin/x"}))
	g.Expect(files["home/nonroot"].Uid).To(Equal(nonroot))
	g.Expect(files["usr/local/bin/x"].Mode).To(Equal(int64(0o755)))
	for n, h := range files {
		g.Expect(h.ModTime.Unix()).To(BeZero(), n)
		g.Expect(h.Uname + h.Gname).To(BeEmpty())
	}
}

func reverse(es []entry) []entry {
	out := slices.Clone(es)
	slices.Reverse(out)
	return out
}

// fakeBinDir holds this command, built (a small Go binary with build info), under the names
// `make build` writes.
func fakeBinDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	first := filepath.Join(dir, "manager")
	if out, err := exec.Command("go", "build", "-trimpath", "-o", first, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, n := range []string{"node-agent", "trainenv-entrypoint", "trainenv-preflight"} {
		if err := os.Link(first, filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func needDpkg(t *testing.T) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("the images take ca-certificates and libc6 from the building machine's Debian packages")
	}
}

// TestTrainenvImagesMatchTheDockerfile: the paths, user and entrypoints of the Dockerfile's
// stages and of what the workload's tools init container runs; digests do not change
// between two builds.
func TestTrainenvImagesMatchTheDockerfile(t *testing.T) {
	needDpkg(t)
	g := NewWithT(t)
	bin := fakeBinDir(t)
	build := func() map[string]*built {
		l, err := newLayers(t.TempDir(), epoch, bin, true)
		g.Expect(err).NotTo(HaveOccurred())
		out := map[string]*built{}
		for _, spec := range trainenvImages {
			b, err := l.build(spec, bin, map[string]string{"org.opencontainers.image.source": sourceURL})
			g.Expect(err).NotTo(HaveOccurred())
			out[spec.Name] = b
		}
		return out
	}
	first, second := build(), build()
	for n := range first {
		d1, _ := first[n].Image.Digest()
		d2, _ := second[n].Image.Digest()
		g.Expect(d1).To(Equal(d2), "%s is reproducible", n)
	}

	tools := workload.ToolsImageInstaller
	preflight := path.Join(path.Dir(tools), entrypoint.PreflightName)
	cases := []struct {
		name, entrypoint string
		files            []string
		glibc            bool
	}{
		{"manager", "/manager", []string{"/manager", tools, preflight}, false},
		{"node-agent", "/node-agent", []string{"/node-agent"}, true},
		{"tools", tools, []string{tools, preflight}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			img := first[tc.name].Image
			mt, _ := img.MediaType()
			g.Expect(mt).To(Equal(types.OCIManifestSchema1))
			cf, err := img.ConfigFile()
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(cf.Config.Entrypoint).To(Equal([]string{tc.entrypoint}))
			g.Expect(cf.Config.User).To(Equal("65532:65532"))
			g.Expect(cf.Created.Time.Unix()).To(BeZero())
			g.Expect(cf.OS + "/" + cf.Architecture).To(Equal("linux/amd64"))
			fs := flatten(t, img)
			for _, f := range tc.files {
				g.Expect(fs).To(HaveKey(strings.TrimPrefix(f, "/")))
				g.Expect(fs[strings.TrimPrefix(f, "/")].Mode&0o005).To(Equal(int64(0o005)), "%s: any user (the pod's uid 1000) may run it", f)
			}
			g.Expect(fs).To(HaveKey("etc/ssl/certs/ca-certificates.crt"))
			g.Expect(fs["home/nonroot"].Uid).To(Equal(nonroot))
			g.Expect(fs["tmp"].Mode).To(Equal(int64(0o1777)))
			if tc.glibc {
				g.Expect(fs).To(HaveKey("lib/x86_64-linux-gnu/libc.so.6"))
				g.Expect(fs).To(HaveKey("lib64/ld-linux-x86-64.so.2"))
			} else {
				g.Expect(fs).NotTo(HaveKey("lib/x86_64-linux-gnu/libc.so.6"))
			}
		})
	}
	// The tools layer is one blob in the manager and tools images.
	ml, _ := first["manager"].Image.Layers()
	tl, _ := first["tools"].Image.Layers()
	md, _ := ml[len(ml)-1].Digest()
	td, _ := tl[len(tl)-1].Digest()
	g.Expect(md).To(Equal(td))
}

// TestSBOM: the SPDX document names the image, the Go binaries with their modules and the
// Debian packages, with unique element IDs and relationships only between them.
func TestSBOM(t *testing.T) {
	needDpkg(t)
	g := NewWithT(t)
	bin := fakeBinDir(t)
	l, err := newLayers(t.TempDir(), epoch, bin, true)
	g.Expect(err).NotTo(HaveOccurred())
	b, err := l.build(trainenvImages[1], bin, nil)
	g.Expect(err).NotTo(HaveOccurred())
	doc := sbom(b, "127.0.0.1:5000/trainenv/node-agent", "sha256:"+strings.Repeat("a", 64), epoch)
	raw, err := json.Marshal(doc)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(raw)).To(ContainSubstring(`"spdxVersion":"SPDX-2.3"`))
	ids := map[string]bool{"SPDXRef-DOCUMENT": true}
	var names []string
	for _, p := range doc.Packages {
		g.Expect(ids).NotTo(HaveKey(p.SPDXID))
		g.Expect(p.SPDXID).To(MatchRegexp(`^SPDXRef-[A-Za-z0-9.-]+$`))
		ids[p.SPDXID] = true
		names = append(names, p.Name)
	}
	g.Expect(names).To(ContainElements("/node-agent", "libc6", "ca-certificates", "github.com/google/go-containerregistry"))
	for _, r := range doc.Relationships {
		g.Expect(ids).To(HaveKey(r.Element))
		g.Expect(ids).To(HaveKey(r.Related))
	}
}

func TestDockerfileConfig(t *testing.T) {
	g := NewWithT(t)
	cfg, err := parseDockerfileConfig("../../images/pytorch/Dockerfile")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cfg.User).To(Equal("1000:1000"))
	g.Expect(cfg.WorkingDir).To(Equal("/home/jovyan"))
	g.Expect(cfg.Cmd).To(Equal([]string{"/bin/bash"}))
	g.Expect(cfg.Env).To(ContainElements("LANG=C.UTF-8", HavePrefix("PATH=/usr/local/sbin:")))
	for _, e := range cfg.Env {
		g.Expect(e).NotTo(Or(HavePrefix("CUDA_VERSION="), HavePrefix("NVIDIA_")), "a CPU image says nothing about CUDA")
	}
	g.Expect(cfg.Labels).To(HaveKeyWithValue("io.trainenv.user", "jovyan"))
	g.Expect(cfg.Labels["org.opencontainers.image.description"]).To(ContainSubstring("uid 1000"))

	// The user the label names is the one setup.sh creates with uid 1000.
	setup, err := os.ReadFile("../../images/pytorch/setup.sh")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(setup)).To(ContainSubstring("useradd --uid 1000 --user-group --create-home --shell /bin/bash jovyan"))

	_, err = parseDockerfileConfig(writeFile(t, "FROM x\nHEALTHCHECK CMD true\n"))
	g.Expect(err).To(MatchError(ContainSubstring("does not know HEALTHCHECK")))
	_, err = parseDockerfileConfig(writeFile(t, "ENV A\n"))
	g.Expect(err).To(MatchError(ContainSubstring("not key=value")))
	cfg, err = parseDockerfileConfig(writeFile(t, "ENV A=1 \\\n  B=\"two words\"\nENV A=3\n"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cfg.Env).To(Equal([]string{"A=3", "B=two words"}))
}

func TestRecipeHash(t *testing.T) {
	g := NewWithT(t)
	root := t.TempDir()
	dir := filepath.Join(root, recipeDir)
	g.Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
	g.Expect(os.WriteFile(filepath.Join(dir, "packages.txt"), []byte("# c\npython3\n\nopenssh-server\n"), 0o644)).To(Succeed())
	g.Expect(os.WriteFile(filepath.Join(dir, "setup.sh"), []byte("true\n"), 0o755)).To(Succeed())
	a, err := readRecipe(root)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(a.Packages).To(Equal([]string{"python3", "openssh-server"}))
	g.Expect(os.WriteFile(filepath.Join(dir, "setup.sh"), []byte("false\n"), 0o755)).To(Succeed())
	b, err := readRecipe(root)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(b.Hash).NotTo(Equal(a.Hash), "a changed setup script is another root file system")

	shipped, err := readRecipe("../..")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(shipped.Packages).To(ContainElements("python3-torch", "python3-ipykernel", "jupyter-server", "openssh-server"))
}

func TestDpkgPackages(t *testing.T) {
	g := NewWithT(t)
	status := "Package: python3-torch\nStatus: install ok installed\nVersion: 1.13.1+dfsg-4\nArchitecture: amd64\nSource: pytorch (1.13.1+dfsg-4)\nDescription: x\n continued: line\n\n" +
		"Package: gone\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: amd64\n\n" +
		"Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u10\nArchitecture: amd64\n"
	g.Expect(dpkgPackages([]byte(status))).To(Equal([]debPackage{
		{Name: "python3-torch", Version: "1.13.1+dfsg-4", Arch: "amd64", Source: "pytorch"},
		{Name: "libc6", Version: "2.36-9+deb12u10", Arch: "amd64"},
	}))
}

func TestOutputsMerge(t *testing.T) {
	g := NewWithT(t)
	state := t.TempDir()
	r := func(n string) result {
		return result{Repository: "127.0.0.1:5001/trainenv/" + n, Digest: "sha256:1", Ref: "127.0.0.1:5001/trainenv/" + n + "@sha256:1"}
	}
	_, err := outputs{Registry: "127.0.0.1:5001", BuilderID: "b", SigningPublicKey: "/k.pub", Images: map[string]result{"pytorch": r("pytorch")}}.write(state)
	g.Expect(err).NotTo(HaveOccurred())
	env, err := outputs{Registry: "127.0.0.1:5001", BuilderID: "b", Images: map[string]result{"node-agent": r("node-agent")}}.write(state)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(env).To(ContainSubstring("TRAINENV_NODE_AGENT_IMAGE=127.0.0.1:5001/trainenv/node-agent@sha256:1\n"))
	g.Expect(env).To(ContainSubstring("TRAINENV_NODE_AGENT_DIGEST=sha256:1\n"))
	g.Expect(env).To(ContainSubstring("TRAINENV_PYTORCH_REPOSITORY=127.0.0.1:5001/trainenv/pytorch\n"), "an earlier run's image stays")
	g.Expect(env).To(ContainSubstring("TRAINENV_SIGNING_PUBLIC_KEY=/k.pub\n"))
	onDisk, _ := os.ReadFile(filepath.Join(state, "images.env"))
	g.Expect(string(onDisk)).To(Equal(env))
	// Sourced by a shell, it sets the variables.
	out, err := exec.Command("sh", "-c", ". "+filepath.Join(state, "images.env")+" && echo $TRAINENV_PYTORCH_IMAGE").Output()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(strings.TrimSpace(string(out))).To(Equal("127.0.0.1:5001/trainenv/pytorch@sha256:1"))
}

func TestIsLoopback(t *testing.T) {
	g := NewWithT(t)
	g.Expect(isLoopback("127.0.0.1:5001")).To(BeTrue())
	g.Expect(isLoopback("localhost:5000")).To(BeTrue())
	g.Expect(isLoopback("registry.example.com")).To(BeFalse())
	g.Expect(isLoopback("127.example.com:443")).To(BeFalse())
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "Dockerfile")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func tarEntries(t *testing.T, l v1.Layer) map[string]*tar.Header {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	return readTar(t, rc)
}

func flatten(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	return readTar(t, rc)
}

func readTar(t *testing.T, r io.Reader) map[string]*tar.Header {
	t.Helper()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[path.Clean(h.Name)] = h
	}
}

func TestNewerVersion(t *testing.T) {
	g := NewWithT(t)
	g.Expect(newerVersion("2.34", "2.4")).To(BeTrue())
	g.Expect(newerVersion("2.31", "2.31")).To(BeFalse())
	g.Expect(newerVersion("2.2.5", "2.3")).To(BeFalse())
	g.Expect(newerVersion("2.3", "")).To(BeTrue())
}

// TestCompressRootfs: device nodes are dropped, the dpkg status is kept aside, and the
// recorded digests are those go-containerregistry computes from the file.
func TestCompressRootfs(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "rootfs.tar")
	f, err := os.Create(src)
	g.Expect(err).NotTo(HaveOccurred())
	tw := tar.NewWriter(f)
	status := "Package: python3\nStatus: install ok installed\nVersion: 3.11.2-1+b1\nArchitecture: amd64\n"
	for _, h := range []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./dev/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		{Name: "./var/lib/dpkg/status", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(status))},
	} {
		g.Expect(tw.WriteHeader(h)).To(Succeed())
		if h.Size > 0 {
			_, err := tw.Write([]byte(status))
			g.Expect(err).NotTo(HaveOccurred())
		}
	}
	g.Expect(tw.Close()).To(Succeed())
	g.Expect(f.Close()).To(Succeed())

	gz := filepath.Join(dir, "layer.tar.gz")
	got, info, err := compressRootfs(src, gz)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(got)).To(Equal(status))
	g.Expect(dpkgPackages(got)).To(HaveLen(1))

	ref, err := tarball.LayerFromFile(gz)
	g.Expect(err).NotTo(HaveOccurred())
	d, _ := ref.Digest()
	diff, _ := ref.DiffID()
	size, _ := ref.Size()
	g.Expect(info).To(Equal(layerInfo{Digest: d.String(), DiffID: diff.String(), Size: size}))
	files := tarEntries(t, ref)
	g.Expect(files).To(HaveKey("var/lib/dpkg/status"))
	g.Expect(files).To(HaveKey("dev"))
	g.Expect(files).NotTo(HaveKey("dev/null"))

	info2, _ := json.Marshal(info)
	g.Expect(os.WriteFile(filepath.Join(dir, "layer.json"), info2, 0o644)).To(Succeed())
	l, err := loadLayer(rootfs{Layer: gz, Info: filepath.Join(dir, "layer.json")})
	g.Expect(err).NotTo(HaveOccurred())
	ld, _ := l.Digest()
	ldiff, _ := l.DiffID()
	g.Expect(ld).To(Equal(d))
	g.Expect(ldiff).To(Equal(diff))
}
