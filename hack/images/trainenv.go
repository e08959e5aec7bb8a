package main

import (
	"archive/tar"
	"debug/buildinfo"
	"fmt"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const regularType = tar.TypeReg

// nonroot is the user trainenv's own containers run as: distroless' "nonroot", the uid the
// chart and config/manager set (runAsUser 65532).
const nonroot = 65532

// trainenvImage is one of trainenv's own images, as the Dockerfile defines it.
type trainenvImage struct {
	Name        string // manager, node-agent, tools
	Title       string
	Description string
	Entrypoint  []string
	// Binaries: file name in the build output directory → path in the image.
	Binaries []binary
	// Glibc: the binary links glibc (cgo: the node agent loads libnvidia-ml through NVML).
	Glibc bool
}

type binary struct{ From, To string }

// The in-pod tools: the tools init container runs /usr/local/bin/trainenv-entrypoint install
// (internal/workload.ToolsImageInstaller), which copies itself and the preflight next to it.
var toolBinaries = []binary{
	{From: "trainenv-entrypoint", To: "usr/local/bin/trainenv-entrypoint"},
	{From: "trainenv-preflight", To: "usr/local/bin/trainenv-preflight"},
}

// trainenvImages are the images of the Dockerfile's stages, plus the in-pod tools alone.
// The manager image carries the tools too: the chart and config/manager pass the manager's
// own image as the tools image (TRAINENV_TOOLS_IMAGE).
var trainenvImages = []trainenvImage{
	{
		Name: "manager", Title: "trainenv manager",
		Description: "The trainenv operator, with the in-pod entrypoint and preflight it hands to user pods.",
		Entrypoint:  []string{"/manager"},
		Binaries:    append([]binary{{From: "manager", To: "manager"}}, toolBinaries...),
	},
	{
		Name: "node-agent", Title: "trainenv node agent",
		Description: "Publishes NVML facts (driver, CUDA, GPU model, health) of a GPU node as node labels.",
		Entrypoint:  []string{"/node-agent"},
		Binaries:    []binary{{From: "node-agent", To: "node-agent"}},
		Glibc:       true,
	},
	{
		Name: "tools", Title: "trainenv in-pod tools",
		Description: "The entrypoint and preflight trainenv copies into environment pods, without the manager.",
		Entrypoint:  []string{"/usr/local/bin/trainenv-entrypoint"},
		Binaries:    toolBinaries,
	},
}

// baseEntries is distroless' nonroot base: the users, /tmp, the nonroot home.
func baseEntries() []entry {
	return []entry{
		file("etc/passwd", 0o644, "root:x:0:0:root:/root:/sbin/nologin\n"+
			"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"+
			"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"),
		file("etc/group", 0o644, "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"),
		dir("home/nonroot", 0o700, nonroot, nonroot),
		dir("root", 0o700, 0, 0),
		dir("tmp", 0o1777, 0, 0),
	}
}

// layers builds the layers shared by trainenv's images once.
type layers struct {
	tmp   string
	mtime time.Time
	base  v1.Layer // users, /tmp, CA certificates
	libc  v1.Layer // glibc, for cgo binaries
	tools v1.Layer // the in-pod tools
	debs  []debPackage
	libc6 debPackage
}

func newLayers(tmp string, mtime time.Time, binDir string, needGlibc bool) (*layers, error) {
	l := &layers{tmp: tmp, mtime: mtime}
	ca, caFiles, err := caCertificates()
	if err != nil {
		return nil, err
	}
	l.debs = []debPackage{ca}
	if l.base, err = layer(tmp, mtime, append(baseEntries(), caFiles...)); err != nil {
		return nil, err
	}
	if needGlibc {
		var libcFiles []entry
		if l.libc6, libcFiles, err = glibc(); err != nil {
			return nil, err
		}
		if l.libc, err = layer(tmp, mtime, libcFiles); err != nil {
			return nil, err
		}
	}
	if l.tools, err = binaryLayer(tmp, mtime, binDir, toolBinaries); err != nil {
		return nil, err
	}
	return l, nil
}

func binaryLayer(tmp string, mtime time.Time, binDir string, bins []binary) (v1.Layer, error) {
	var entries []entry
	for _, b := range bins {
		entries = append(entries, hostFile(b.To, 0o755, filepath.Join(binDir, b.From)))
	}
	return layer(tmp, mtime, entries)
}

// built is an image ready to push, with what its SBOM and provenance say.
type built struct {
	Name  string
	Image v1.Image
	// Go binaries in the image: path in the image → build info.
	Go   map[string]*buildinfo.BuildInfo
	Debs []debPackage
	// Materials and parameters of the provenance.
	Materials  []material
	Parameters map[string]any
}

func (l *layers) build(spec trainenvImage, binDir string, labels map[string]string) (*built, error) {
	b := &built{Name: spec.Name, Go: map[string]*buildinfo.BuildInfo{}, Debs: l.debs}
	ls := []v1.Layer{l.base}
	if spec.Glibc {
		ls = append(ls, l.libc)
		b.Debs = append(b.Debs, l.libc6)
	}
	var own []binary
	for _, bin := range spec.Binaries {
		if !isTool(bin) {
			own = append(own, bin)
		}
	}
	if len(own) > 0 {
		ol, err := binaryLayer(l.tmp, l.mtime, binDir, own)
		if err != nil {
			return nil, err
		}
		ls = append(ls, ol)
	}
	if hasTools(spec.Binaries) {
		ls = append(ls, l.tools)
	}
	goarch, floor := "", ""
	for _, bin := range spec.Binaries {
		info, err := readBuildInfo(filepath.Join(binDir, bin.From))
		if err != nil {
			return nil, err
		}
		b.Go["/"+bin.To] = info
		if setting(info, "CGO_ENABLED") == "1" {
			if floor, err = cgoFloor(filepath.Join(binDir, bin.From), floor); err != nil {
				return nil, err
			}
		}
		goarch = setting(info, "GOARCH")
		b.Materials = append(b.Materials, toolchainMaterial(info))
	}
	img, err := mutate.AppendLayers(ociBase(), ls...)
	if err != nil {
		return nil, err
	}
	cfg := v1.Config{
		Entrypoint: spec.Entrypoint,
		User:       fmt.Sprintf("%d:%d", nonroot, nonroot),
		WorkingDir: "/",
		Env: []string{
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
		},
		Labels: mergeLabels(labels, map[string]string{
			"org.opencontainers.image.title":       spec.Title,
			"org.opencontainers.image.description": spec.Description,
		}),
	}
	if floor != "" {
		// The oldest glibc the image's cgo binaries run with: for the preflight, the glibc
		// users' images need (docs/platform-admin.md, "The tools image").
		cfg.Labels["io.trainenv.glibc-min"] = floor
	}
	if b.Image, err = finish(img, cfg, l.mtime, goarch); err != nil {
		return nil, err
	}
	b.Parameters = map[string]any{"image": spec.Name}
	return b, nil
}

func isTool(b binary) bool {
	for _, t := range toolBinaries {
		if b == t {
			return true
		}
	}
	return false
}

func hasTools(bins []binary) bool {
	for _, b := range bins {
		if isTool(b) {
			return true
		}
	}
	return false
}

// ociBase is an empty image with OCI media types.
func ociBase() v1.Image {
	return mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
}

// finish sets the configuration, the creation time and the platform.
func finish(img v1.Image, cfg v1.Config, created time.Time, arch string) (v1.Image, error) {
	img, err := mutate.Config(img, cfg)
	if err != nil {
		return nil, err
	}
	img, err = mutate.CreatedAt(img, v1.Time{Time: created})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	// No history: its timestamps and commands say nothing a reader of the SBOM lacks.
	cf.History = nil
	return mutate.ConfigFile(img, cf)
}

func mergeLabels(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func setting(info *buildinfo.BuildInfo, key string) string {
	for _, s := range info.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}

func readBuildInfo(path string) (*buildinfo.BuildInfo, error) {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (make build writes it)", path, err)
	}
	return info, nil
}

// cgoFloor returns the newer of floor and the glibc the binary needs, and fails when that
// exceeds $MAX_GLIBC (as hack/build.sh does): the preflight must run in users' images.
func cgoFloor(path, floor string) (string, error) {
	need, err := glibcFloor(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if limit := os.Getenv("MAX_GLIBC"); limit != "" && newerVersion(need, limit) {
		return "", fmt.Errorf("%s needs glibc %s, newer than MAX_GLIBC=%s", path, need, limit)
	}
	if newerVersion(need, floor) {
		return need, nil
	}
	return floor, nil
}
