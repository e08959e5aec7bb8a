package distribution

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// CosignWorld is the real distribution registry on loopback and the real cosign CLI, with
// two key pairs, "release" and "other", made by `cosign generate-key-pair` in a private
// directory. Tests sign and attest with it as users do, without a transparency log (none
// is reachable).
type CosignWorld struct {
	Cosign, Dir, Host string
}

// NewCosignWorld starts the registry (DOCKER_REGISTRY) and makes the key pairs with cosign
// (COSIGN); see Tool for how they are found.
func NewCosignWorld(tb testing.TB) *CosignWorld {
	tb.Helper()
	w := &CosignWorld{Cosign: Tool(tb, "COSIGN"), Dir: tb.TempDir()}
	w.Host = Start(tb, Tool(tb, "DOCKER_REGISTRY"))
	w.Run(tb, "generate-key-pair", "--output-key-prefix", "release")
	w.Run(tb, "generate-key-pair", "--output-key-prefix", "other")
	return w
}

// Run runs cosign in the world's directory, with an empty key password and a private
// home, so that nothing outside the test is read or written, and returns its output.
func (w *CosignWorld) Run(tb testing.TB, args ...string) string {
	tb.Helper()
	cmd := exec.Command(w.Cosign, args...)
	cmd.Dir = w.Dir
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=", "HOME="+w.Dir, "TUF_ROOT="+filepath.Join(w.Dir, "tuf"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Fails runs cosign as Run does, expects it to fail, and returns its output.
func (w *CosignWorld) Fails(tb testing.TB, args ...string) string {
	tb.Helper()
	cmd := exec.Command(w.Cosign, args...)
	cmd.Dir = w.Dir
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=", "HOME="+w.Dir, "TUF_ROOT="+filepath.Join(w.Dir, "tuf"))
	out, err := cmd.CombinedOutput()
	if err == nil {
		tb.Fatalf("cosign %s succeeded, expected a failure:\n%s", strings.Join(args, " "), out)
	}
	return string(out)
}

// Push writes a random image to <path>:1 in the registry and returns repository@digest.
func (w *CosignWorld) Push(tb testing.TB, path string) string {
	tb.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		tb.Fatal(err)
	}
	tag, err := name.NewTag(w.Host + "/" + path + ":1")
	if err != nil {
		tb.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		tb.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		tb.Fatal(err)
	}
	return tag.Context().Name() + "@" + d.String()
}

// Sign is `cosign sign --key <key>.key` without a transparency log.
func (w *CosignWorld) Sign(tb testing.TB, key, img string) {
	tb.Helper()
	w.Run(tb, "sign", "--key", key+".key", "--tlog-upload=false", "--allow-insecure-registry", "--yes", img)
}

// Attest is `cosign attest --type slsaprovenance` with a predicate naming builderID,
// without a transparency log.
func (w *CosignWorld) Attest(tb testing.TB, key, img, builderID string) {
	tb.Helper()
	predicate := filepath.Join(w.Dir, "provenance.json")
	if err := os.WriteFile(predicate, []byte(`{"builder":{"id":"`+builderID+`"},"buildType":"https://example.com/build@v1"}`), 0o600); err != nil {
		tb.Fatal(err)
	}
	w.Run(tb, "attest", "--key", key+".key", "--type", "slsaprovenance", "--predicate", predicate,
		"--tlog-upload=false", "--allow-insecure-registry", "--yes", img)
}

// AttestLegacy is `cosign attest --key <key>.key --type <type>` with the predicate
// document, in the legacy format (the .att tag), without a transparency log: cosign v2's
// default, or cosign v3 with its bundle format and signing configuration turned off.
func (w *CosignWorld) AttestLegacy(tb testing.TB, key, img, predicateType, predicate string) {
	tb.Helper()
	path := filepath.Join(w.Dir, "predicate.json")
	if err := os.WriteFile(path, []byte(predicate), 0o600); err != nil {
		tb.Fatal(err)
	}
	args := []string{"attest", "--key", key + ".key", "--type", predicateType, "--predicate", path, "--tlog-upload=false"}
	if strings.Contains(w.Run(tb, "version"), "v3.") {
		args = append(args, "--new-bundle-format=false", "--use-signing-config=false")
	}
	w.Run(tb, append(args, "--allow-insecure-registry", "--yes", img)...)
}

// PublicKey is the PEM of key's public half.
func (w *CosignWorld) PublicKey(tb testing.TB, key string) string {
	tb.Helper()
	pem, err := os.ReadFile(filepath.Join(w.Dir, key+".pub"))
	if err != nil {
		tb.Fatal(err)
	}
	return string(pem)
}

// NewCosign3World is NewCosignWorld with the cosign v3 CLI (COSIGN3), whose default is the
// sigstore bundle attached as an OCI referrer. It writes the offline signing configuration
// (no transparency log, no timestamp authority: none is reachable) to sc.json.
func NewCosign3World(tb testing.TB) *CosignWorld {
	tb.Helper()
	w := &CosignWorld{Cosign: Tool(tb, "COSIGN3"), Dir: tb.TempDir()}
	w.Host = Start(tb, Tool(tb, "DOCKER_REGISTRY"))
	w.Run(tb, "generate-key-pair", "--output-key-prefix", "release")
	w.Run(tb, "generate-key-pair", "--output-key-prefix", "other")
	w.Run(tb, "signing-config", "create", "--out", "sc.json")
	return w
}

// SignBundle is cosign v3's default `cosign sign --key <key>.key` with the offline signing
// configuration: a sigstore bundle attached as an OCI referrer. Extra flags (e.g.
// --certificate) come before the image.
func (w *CosignWorld) SignBundle(tb testing.TB, key, img string, flags ...string) {
	tb.Helper()
	args := append([]string{"sign", "--key", key + ".key", "--signing-config", "sc.json", "--allow-insecure-registry", "--yes"}, flags...)
	w.Run(tb, append(args, img)...)
}

// AttestBundle is cosign v3's `cosign attest --key <key>.key --type <type>` with the
// predicate document and the offline signing configuration: a DSSE bundle as a referrer.
func (w *CosignWorld) AttestBundle(tb testing.TB, key, img, predicateType, predicate string) {
	tb.Helper()
	path := filepath.Join(w.Dir, "predicate.json")
	if err := os.WriteFile(path, []byte(predicate), 0o600); err != nil {
		tb.Fatal(err)
	}
	w.Run(tb, "attest", "--key", key+".key", "--type", predicateType, "--predicate", path,
		"--signing-config", "sc.json", "--allow-insecure-registry", "--yes", img)
}

// WriteFile writes a file into the world's directory (certificates, trusted roots).
func (w *CosignWorld) WriteFile(tb testing.TB, name string, data []byte) {
	tb.Helper()
	if err := os.WriteFile(filepath.Join(w.Dir, name), data, 0o600); err != nil {
		tb.Fatal(err)
	}
}
