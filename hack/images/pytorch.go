package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
)

// The reference PyTorch environment image. Its contents are defined once, in
// images/pytorch: packages.txt (the Debian packages) and setup.sh (the user, sshd, cleanup),
// which its Dockerfile runs with apt-get and this builder with mmdebstrap; its configuration
// (ENV, LABEL, USER, WORKDIR, CMD) is read from that Dockerfile.

const (
	recipeDir = "images/pytorch"
	// suite is the Debian release the image is built from (the Dockerfile's FROM).
	suite = "bookworm"
	// rootfsFormat changes when the way the layer is made from the recipe changes.
	rootfsFormat = "rootfs-v1"
)

// mirrors are the apt sources, those of a stock Debian bookworm machine (mmdebstrap's
// default for a stable suite, written out so the recipe's hash covers them).
var mirrors = []string{
	"deb http://deb.debian.org/debian bookworm main",
	"deb http://deb.debian.org/debian bookworm-updates main",
	"deb http://deb.debian.org/debian-security bookworm-security main",
}

type recipe struct {
	dir      string // the checkout's images/pytorch
	Packages []string
	Hash     string // of everything the root file system is made from
	files    []string
}

func readRecipe(root string) (*recipe, error) {
	dir, err := filepath.Abs(filepath.Join(root, recipeDir))
	if err != nil {
		return nil, err
	}
	r := &recipe{dir: dir, files: []string{"packages.txt", "setup.sh"}}
	b, err := os.ReadFile(filepath.Join(r.dir, "packages.txt"))
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			r.Packages = append(r.Packages, line)
		}
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n", rootfsFormat, suite, strings.Join(mirrors, "\n"))
	for _, f := range r.files {
		c, err := os.ReadFile(filepath.Join(r.dir, f))
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(h, "%s %d\n", f, len(c))
		h.Write(c)
	}
	r.Hash = hex.EncodeToString(h.Sum(nil))
	return r, nil
}

// rootfs is the cached layer: the gzip-compressed root file system, its digests (so that a
// warm run reads none of its 500 MB) and its dpkg status.
type rootfs struct {
	Layer      string
	Info       string
	DpkgStatus string
}

// layerInfo is what an image needs of a layer without reading it.
type layerInfo struct {
	Digest string `json:"digest"`
	DiffID string `json:"diffID"`
	Size   int64  `json:"size"`
}

// ensureRootfs returns the layer of the recipe's root file system from the cache (keyed by
// the recipe's hash), building it with mmdebstrap if it is not there.
func ensureRootfs(r *recipe, cacheDir string, mtime time.Time, log func(string, ...any)) (rootfs, error) {
	dir := filepath.Join(cacheDir, "pytorch-"+r.Hash[:16])
	out := rootfs{Layer: filepath.Join(dir, "layer.tar.gz"), Info: filepath.Join(dir, "layer.json"), DpkgStatus: filepath.Join(dir, "dpkg-status")}
	if _, err := os.Stat(out.Info); err == nil {
		log("reference image root file system: cached in %s", dir)
		return out, nil
	}
	if os.Geteuid() != 0 {
		return out, errors.New("building the reference image's root file system runs mmdebstrap, which needs root " +
			"(run as root, e.g. sudo make refimage); once built it is cached")
	}
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return out, errors.New("mmdebstrap is not installed (make refimage installs the Debian package)")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return out, err
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return out, err
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	log("building the reference image's root file system with mmdebstrap (%d packages; a few minutes, once)", len(r.Packages))
	tarPath := filepath.Join(tmp, "rootfs.tar")
	args := []string{"--variant=minbase", "--include=" + strings.Join(r.Packages, ","),
		"--customize-hook=" + filepath.Join(r.dir, "setup.sh") + ` "$1"`, suite, tarPath}
	cmd := exec.Command("mmdebstrap", append(args, mirrors...)...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("SOURCE_DATE_EPOCH=%d", mtime.Unix()))
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = os.Stderr, io.MultiWriter(os.Stderr, &stderr)
	if err := cmd.Run(); err != nil {
		return out, fmt.Errorf("mmdebstrap: %w", err)
	}
	log("mmdebstrap: %s", time.Since(start).Round(time.Second))
	start = time.Now()
	status, info, err := compressRootfs(tarPath, filepath.Join(tmp, "layer.tar.gz"))
	if err != nil {
		return out, err
	}
	infoJSON, err := json.Marshal(info)
	if err != nil {
		return out, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "dpkg-status"), status, 0o644); err != nil {
		return out, err
	}
	// The layer info last: it marks a complete cache entry.
	if err := os.Rename(filepath.Join(tmp, "layer.tar.gz"), out.Layer); err != nil {
		return out, err
	}
	if err := os.Rename(filepath.Join(tmp, "dpkg-status"), out.DpkgStatus); err != nil {
		return out, err
	}
	if err := os.WriteFile(out.Info, infoJSON, 0o644); err != nil {
		return out, err
	}
	log("compressed the layer: %s", time.Since(start).Round(time.Second))
	return out, nil
}

// compressRootfs writes mmdebstrap's tarball as a gzip-compressed layer without device
// nodes (the runtime provides /dev) and returns the dpkg status it holds and the layer's
// digests. klauspost's gzip (already in the module graph through go-containerregistry)
// compresses the 1.5 GB about twice as fast as compress/gzip at its default level.
func compressRootfs(from, to string) ([]byte, layerInfo, error) {
	var info layerInfo
	in, err := os.Open(from)
	if err != nil {
		return nil, info, err
	}
	defer in.Close()
	f, err := os.Create(to)
	if err != nil {
		return nil, info, err
	}
	defer f.Close()
	compressed, uncompressed := sha256.New(), sha256.New()
	counter := &countingWriter{w: io.MultiWriter(f, compressed)}
	bw := bufio.NewWriterSize(counter, 1<<20)
	zw, err := gzip.NewWriterLevel(bw, gzip.DefaultCompression)
	if err != nil {
		return nil, info, err
	}
	tr, tw := tar.NewReader(bufio.NewReaderSize(in, 1<<20)), tar.NewWriter(io.MultiWriter(zw, uncompressed))
	var status []byte
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, info, err
		}
		switch h.Typeflag {
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, info, err
		}
		var body io.Reader = tr
		var buf bytes.Buffer
		if strings.TrimPrefix(h.Name, "./") == "var/lib/dpkg/status" {
			body = io.TeeReader(tr, &buf)
		}
		if _, err := io.Copy(tw, body); err != nil {
			return nil, info, err
		}
		if buf.Len() > 0 {
			status = buf.Bytes()
		}
	}
	if status == nil {
		return nil, info, errors.New("the root file system has no var/lib/dpkg/status")
	}
	if err := tw.Close(); err != nil {
		return nil, info, err
	}
	if err := zw.Close(); err != nil {
		return nil, info, err
	}
	if err := bw.Flush(); err != nil {
		return nil, info, err
	}
	info = layerInfo{Digest: "sha256:" + hex.EncodeToString(compressed.Sum(nil)),
		DiffID: "sha256:" + hex.EncodeToString(uncompressed.Sum(nil)), Size: counter.n}
	return status, info, f.Close()
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// cachedLayer is the cached compressed layer with its recorded digests.
type cachedLayer struct {
	path string
	info layerInfo
}

func (l cachedLayer) Digest() (v1.Hash, error)            { return v1.NewHash(l.info.Digest) }
func (l cachedLayer) DiffID() (v1.Hash, error)            { return v1.NewHash(l.info.DiffID) }
func (l cachedLayer) Size() (int64, error)                { return l.info.Size, nil }
func (l cachedLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }
func (l cachedLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }

func loadLayer(fs rootfs) (v1.Layer, error) {
	b, err := os.ReadFile(fs.Info)
	if err != nil {
		return nil, err
	}
	var info layerInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("%s: %w", fs.Info, err)
	}
	if st, err := os.Stat(fs.Layer); err != nil || st.Size() != info.Size {
		return nil, fmt.Errorf("%s does not match %s: remove the directory to rebuild it", fs.Layer, fs.Info)
	}
	return partial.CompressedToLayer(cachedLayer{path: fs.Layer, info: info})
}

// dpkgPackages reads the installed packages from a dpkg status file.
func dpkgPackages(status []byte) []debPackage {
	var out []debPackage
	for _, para := range strings.Split(string(status), "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(para, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, " ") {
				fields[k] = strings.TrimSpace(v)
			}
		}
		if fields["Package"] == "" || !strings.HasSuffix(fields["Status"], " installed") {
			continue
		}
		src, _, _ := strings.Cut(fields["Source"], " ")
		out = append(out, debPackage{Name: fields["Package"], Version: fields["Version"], Arch: fields["Architecture"], Source: src})
	}
	return out
}

// buildPyTorch makes the reference image from the cached root file system and the
// Dockerfile's configuration.
func buildPyTorch(root, cacheDir string, mtime time.Time, labels map[string]string, log func(string, ...any)) (*built, error) {
	r, err := readRecipe(root)
	if err != nil {
		return nil, err
	}
	cfg, err := parseDockerfileConfig(filepath.Join(r.dir, "Dockerfile"))
	if err != nil {
		return nil, err
	}
	fs, err := ensureRootfs(r, cacheDir, mtime, log)
	if err != nil {
		return nil, err
	}
	status, err := os.ReadFile(fs.DpkgStatus)
	if err != nil {
		return nil, err
	}
	debs := dpkgPackages(status)
	if len(debs) == 0 {
		return nil, fmt.Errorf("%s lists no installed package", fs.DpkgStatus)
	}
	l, err := loadLayer(fs)
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(ociBase(), l)
	if err != nil {
		return nil, err
	}
	cfg.Labels = mergeLabels(labels, cfg.Labels)
	arch := debs[0].Arch
	for _, d := range debs {
		if d.Name == "libc6" {
			arch = d.Arch
		}
	}
	if img, err = finish(img, cfg, mtime, arch); err != nil {
		return nil, err
	}
	b := &built{Name: "pytorch", Image: img, Debs: debs,
		Parameters: map[string]any{"image": "pytorch", "suite": suite, "mirrors": mirrors, "packages": r.Packages, "recipeHash": r.Hash}}
	for _, f := range append(r.files, "Dockerfile") {
		m, err := fileMaterial(root, filepath.Join(recipeDir, f))
		if err != nil {
			return nil, err
		}
		b.Materials = append(b.Materials, m)
	}
	for _, d := range debs {
		b.Materials = append(b.Materials, material{URI: "pkg:deb/debian/" + d.Name + "@" + d.Version + "?arch=" + d.Arch})
	}
	return b, nil
}
