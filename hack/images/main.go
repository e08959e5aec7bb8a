// Command images builds trainenv's container images without Docker, pushes them, signs them
// and attests them, for `make images`, `make refimage` and the local cluster.
//
//   - manager, node-agent, tools: trainenv's own images, from the binaries `make build` wrote
//     (the Dockerfile's stages, same paths, user and entrypoints). The manager image carries
//     the in-pod tools too (it is the tools image the chart passes); "tools" is them alone.
//   - pytorch: the reference PyTorch environment image, from images/pytorch (Debian packages
//     installed by mmdebstrap, which needs root; the layer is cached by the recipe's hash).
//
// Every image is OCI, reproducible (fixed timestamps: SOURCE_DATE_EPOCH, default 0), pushed
// by tag and signed by digest with the cosign CLI and a key pair kept in the state directory
// (generated on first use), with an SPDX SBOM (`--type spdxjson`) and a SLSA v0.2 provenance
// (`--type slsaprovenance`) attestation. The results go to STATE/images.env (shell) and
// STATE/images.json, and to stdout:
//
//	TRAINENV_MANAGER_IMAGE=127.0.0.1:5001/trainenv/manager@sha256:…
//	TRAINENV_MANAGER_REPOSITORY=127.0.0.1:5001/trainenv/manager
//	TRAINENV_MANAGER_DIGEST=sha256:…
//	… (NODE_AGENT, TOOLS, PYTORCH) …
//	TRAINENV_SIGNING_PUBLIC_KEY=STATE/cosign.pub
//	TRAINENV_BUILDER_ID=https://github.com/trainenv/trainenv/hack/images@v1
//
// usage: go run ./hack/images -registry 127.0.0.1:5001 -bin bin -state bin/dev/images [-images manager,node-agent,tools,pytorch]
//
//	go run ./hack/images -unpack REF -into DIR    (pull an image and unpack its file system, for checks)
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

type options struct {
	registry, binDir, state, cosign, images, tag, prefix, cache, source, builderID string
	insecure, sign                                                                 bool
}

func main() {
	o := options{}
	flag.StringVar(&o.registry, "registry", "", "registry host[:port] to push to (required)")
	flag.StringVar(&o.binDir, "bin", "bin", "directory holding the binaries `make build` wrote")
	flag.StringVar(&o.state, "state", "", "state directory: the signing key pair, images.env and images.json (required)")
	flag.StringVar(&o.cosign, "cosign", "bin/cosign", "the cosign CLI (v2)")
	flag.StringVar(&o.images, "images", "manager,node-agent,tools", "comma-separated images to build: manager, node-agent, tools, pytorch")
	flag.StringVar(&o.tag, "tag", "dev", "tag pushed with each image (the outputs name digests)")
	flag.StringVar(&o.prefix, "prefix", "trainenv", "repository prefix inside the registry")
	flag.StringVar(&o.cache, "cache", defaultCache(), "cache for the reference image's root file system")
	flag.StringVar(&o.source, "source", ".", "the trainenv checkout (images/pytorch, git commit)")
	flag.StringVar(&o.builderID, "builder-id", DefaultBuilderID, "builder.id of the SLSA provenance")
	flag.BoolVar(&o.insecure, "insecure", false, "plain HTTP to the registry (default: on for 127.0.0.1 and localhost)")
	flag.BoolVar(&o.sign, "sign", true, "sign and attest the images")
	unpackRef := flag.String("unpack", "", "instead of building: pull this image and unpack its file system into -into")
	into := flag.String("into", "", "directory for -unpack")
	flag.Parse()
	if !isFlagSet("insecure") {
		o.insecure = isLoopback(o.registry)
	}
	if *unpackRef != "" {
		if !isFlagSet("insecure") {
			o.insecure = isLoopback(strings.SplitN(*unpackRef, "/", 2)[0])
		}
		if err := unpack(*unpackRef, *into, o.insecure); err != nil {
			fmt.Fprintln(os.Stderr, "images:", err)
			os.Exit(1)
		}
		return
	}
	out, err := run(o, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
	fmt.Print(out)
}

func defaultCache() string {
	if c := os.Getenv("TRAINENV_CACHE"); c != "" {
		return c
	}
	if c, err := os.UserCacheDir(); err == nil {
		return filepath.Join(c, "trainenv")
	}
	return filepath.Join(os.TempDir(), "trainenv-cache")
}

func isFlagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func isLoopback(registry string) bool {
	host, _, err := net.SplitHostPort(registry)
	if err != nil {
		host = strings.Trim(registry, "[]")
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

var knownImages = []string{"manager", "node-agent", "tools", "pytorch"}

// run builds, pushes, signs and attests the images and returns the env file's contents.
func run(o options, logw io.Writer) (string, error) {
	log := func(format string, args ...any) { fmt.Fprintf(logw, "images: "+format+"\n", args...) }
	if o.registry == "" || o.state == "" {
		return "", errors.New("-registry and -state are required")
	}
	names := strings.Split(o.images, ",")
	for _, n := range names {
		if !slices.Contains(knownImages, n) {
			return "", fmt.Errorf("unknown image %q (known: %s)", n, strings.Join(knownImages, ", "))
		}
	}
	mtime, err := sourceDateEpoch()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(o.state, 0o700); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp("", "trainenv-images-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)

	cosign := cosignCLI{bin: o.cosign, dir: o.state, insecure: o.insecure, log: log}
	if o.sign {
		// cosign runs in the state directory: find it from here.
		if cosign.bin, err = exec.LookPath(o.cosign); err != nil {
			return "", fmt.Errorf("the cosign CLI: %w (make cosign installs it)", err)
		}
		if cosign.bin, err = filepath.Abs(cosign.bin); err != nil {
			return "", err
		}
		if err := cosign.ensureKey(); err != nil {
			return "", err
		}
	}
	p := pusher{registry: o.registry, prefix: o.prefix, tag: o.tag, insecure: o.insecure}
	checkout := gitSource(o.source)
	results := map[string]result{}
	for _, b := range builders(o, names, mtime, tmp, checkout, log) {
		start := time.Now()
		img, src, err := b()
		if err != nil {
			return "", err
		}
		r, err := p.push(img)
		if err != nil {
			return "", err
		}
		log("%s: pushed %s (%s compressed, built in %s)", img.Name, r.Ref, humanBytes(r.Size), time.Since(start).Round(100*time.Millisecond))
		if o.sign {
			if err := signAndAttest(cosign, img, r, src, o.builderID, mtime, start, tmp); err != nil {
				return "", fmt.Errorf("%s: %w", img.Name, err)
			}
		}
		results[img.Name] = r
	}
	out := outputs{Registry: o.registry, BuilderID: o.builderID, Images: results}
	if o.sign {
		out.SigningPublicKey, _ = filepath.Abs(cosign.PubKey())
	}
	return out.write(o.state)
}

// builders returns, in order, a function per requested image that builds it.
func builders(o options, names []string, mtime time.Time, tmp string, checkout source, log func(string, ...any)) []func() (*built, source, error) {
	labels := func(src source) map[string]string {
		l := map[string]string{"org.opencontainers.image.source": sourceURL, "org.opencontainers.image.created": mtime.UTC().Format(time.RFC3339)}
		if src.Commit != "" {
			l["org.opencontainers.image.revision"] = src.Commit
		}
		return l
	}
	var shared *layers
	var out []func() (*built, source, error)
	for _, spec := range trainenvImages {
		if !slices.Contains(names, spec.Name) {
			continue
		}
		out = append(out, func() (*built, source, error) {
			src, err := binariesSource(o.binDir, spec, checkout)
			if err != nil {
				return nil, src, err
			}
			if shared == nil {
				needGlibc := slices.Contains(names, "node-agent")
				if shared, err = newLayers(tmp, mtime, o.binDir, needGlibc); err != nil {
					return nil, src, err
				}
			}
			b, err := shared.build(spec, o.binDir, labels(src))
			return b, src, err
		})
	}
	if slices.Contains(names, "pytorch") {
		out = append(out, func() (*built, source, error) {
			src := recipeSource(o.source, recipeDir)
			b, err := buildPyTorch(o.source, o.cache, mtime, labels(src), log)
			return b, src, err
		})
	}
	return out
}

// binariesSource is the commit the image's binaries were built from (their build info),
// and fails if they disagree: an image is built from one commit.
func binariesSource(binDir string, spec trainenvImage, checkout source) (source, error) {
	var src *source
	for _, b := range spec.Binaries {
		info, err := readBuildInfo(filepath.Join(binDir, b.From))
		if err != nil {
			return source{}, err
		}
		s := buildSource(info, checkout)
		if src != nil && *src != s {
			return source{}, fmt.Errorf("%s: its binaries were built from different commits (%s, %s): run make build", spec.Name, src.Commit, s.Commit)
		}
		src = &s
	}
	return *src, nil
}

func signAndAttest(c cosignCLI, b *built, r result, src source, builderID string, mtime, started time.Time, tmp string) error {
	if err := c.sign(r.Ref); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(tmp, b.Name+"-")
	if err != nil {
		return err
	}
	if err := c.attest(r.Ref, predicateSPDX, sbom(b, r.Repository, r.Digest, mtime), dir); err != nil {
		return err
	}
	return c.attest(r.Ref, predicateSLSA, newProvenance(b, builderID, src, started, time.Now()), dir)
}

// sourceDateEpoch is the images' timestamp: $SOURCE_DATE_EPOCH, else 0 (1970), as ko does.
func sourceDateEpoch() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", s, err)
	}
	return time.Unix(n, 0).UTC(), nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
}
