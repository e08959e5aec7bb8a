package registry_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/trainenv/trainenv/internal/registry"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
)

// Registries written to misbehave. Each resolution must fail in bounded time and memory
// with an error that says what the registry did; none may yield a digest.

const gib = 1 << 30

// stream writes n bytes from a fixed buffer (the server allocates nothing per byte), until
// the client hangs up.
func stream(w http.ResponseWriter, n int64) {
	buf := make([]byte, 1<<20)
	for n > 0 {
		chunk := min(n, int64(len(buf)))
		if _, err := w.Write(buf[:chunk]); err != nil {
			return
		}
		n -= chunk
	}
}

// allocated runs f and returns the bytes the process allocated meanwhile.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func hostileResolve(t *testing.T, reg *registrytest.Registry, timeout time.Duration) (time.Duration, uint64, error) {
	t.Helper()
	r := registry.NewResolver(nil, 16)
	if timeout > 0 {
		r.Timeout = timeout
	}
	var err error
	start := time.Now()
	alloc := allocated(func() {
		_, err = r.Resolve(context.Background(), registry.Request{Image: reg.Host + "/team/app:1", Platform: "linux/amd64"})
	})
	return time.Since(start), alloc, err
}

func TestHostileRegistries(t *testing.T) {
	cases := []struct {
		name string
		// hook misbehaves on some requests for team/app (pushed as :1, digest given).
		hook    func(digest string) func(http.ResponseWriter, *http.Request) bool
		timeout time.Duration
		message string
	}{
		{"manifest of 1 GiB, no Content-Length", func(string) func(http.ResponseWriter, *http.Request) bool {
			return func(w http.ResponseWriter, req *http.Request) bool {
				if req.Method != http.MethodGet || !strings.Contains(req.URL.Path, "/manifests/") {
					return false
				}
				w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
				stream(w, gib)
				return true
			}
		}, 0, "the registry sent a manifest of more than 4194304 bytes, over trainenv's limit"},
		{"manifest of 1 GiB, announced", func(string) func(http.ResponseWriter, *http.Request) bool {
			return func(w http.ResponseWriter, req *http.Request) bool {
				if req.Method != http.MethodGet || !strings.Contains(req.URL.Path, "/manifests/") {
					return false
				}
				w.Header().Set("Content-Length", fmt.Sprint(gib))
				stream(w, gib)
				return true
			}
		}, 0, "the registry sent a manifest of 1073741824 bytes, over trainenv's limit of 4194304"},
		{"image config of 1 GiB", func(string) func(http.ResponseWriter, *http.Request) bool {
			// A well-formed manifest whose config says it is 1 GiB (go-containerregistry
			// reads a blob up to its declared size).
			config := "sha256:" + otherDigest()
			manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
				`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":1073741824,"digest":"` + config + `"},"layers":[]}`)
			sum := sha256.Sum256(manifest)
			digest := "sha256:" + hex.EncodeToString(sum[:])
			return func(w http.ResponseWriter, req *http.Request) bool {
				switch {
				case strings.HasSuffix(req.URL.Path, "/manifests/1"), strings.HasSuffix(req.URL.Path, "/manifests/"+digest):
					w.Header().Set("Docker-Content-Digest", digest)
					w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
					w.Header().Set("Content-Length", fmt.Sprint(len(manifest)))
					if req.Method == http.MethodGet {
						_, _ = w.Write(manifest)
					}
				case strings.HasSuffix(req.URL.Path, "/blobs/"+config):
					stream(w, gib)
				default:
					return false
				}
				return true
			}
		}, 0, "the registry sent a blob of more than 16777216 bytes, over trainenv's limit"},
		{"redirect loop", func(string) func(http.ResponseWriter, *http.Request) bool {
			return func(w http.ResponseWriter, req *http.Request) bool {
				if !strings.Contains(req.URL.Path, "/manifests/") {
					return false
				}
				// Back and forth between two paths of the same host.
				next := req.URL.Path + "-loop"
				if strings.HasSuffix(req.URL.Path, "-loop") {
					next = strings.TrimSuffix(req.URL.Path, "-loop")
				}
				http.Redirect(w, req, next, http.StatusTemporaryRedirect)
				return true
			}
		}, 0, "stopped after 10 redirects"},
		{"slow loris: no answer", func(string) func(http.ResponseWriter, *http.Request) bool {
			return func(_ http.ResponseWriter, req *http.Request) bool {
				if !strings.Contains(req.URL.Path, "/manifests/") {
					return false
				}
				<-req.Context().Done()
				return true
			}
		}, time.Second, "no complete answer from the registry within 1s"},
		{"slow loris: one byte a second", func(string) func(http.ResponseWriter, *http.Request) bool {
			return func(w http.ResponseWriter, req *http.Request) bool {
				if req.Method != http.MethodGet || !strings.Contains(req.URL.Path, "/manifests/") {
					return false
				}
				w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
				for {
					if _, err := w.Write([]byte(" ")); err != nil {
						return true
					}
					w.(http.Flusher).Flush()
					select {
					case <-req.Context().Done():
						return true
					case <-time.After(time.Second):
					}
				}
			}
		}, time.Second, "no complete answer from the registry within 1s"},
		{"content does not match its digest", func(digest string) func(http.ResponseWriter, *http.Request) bool {
			return func(w http.ResponseWriter, req *http.Request) bool {
				if req.Method != http.MethodGet || !strings.HasSuffix(req.URL.Path, "/manifests/"+digest) {
					return false
				}
				w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
				_, _ = w.Write([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}`))
				return true
			}
		}, 0, `does not match requested digest: "%s"`},
		{"tag answers with a digest whose content differs", func(digest string) func(http.ResponseWriter, *http.Request) bool {
			// HEAD says the tag is sha256(other); the content by that digest is the real image.
			forged := "sha256:" + otherDigest()
			return func(w http.ResponseWriter, req *http.Request) bool {
				switch {
				case req.Method == http.MethodHead && strings.HasSuffix(req.URL.Path, "/manifests/1"):
					w.Header().Set("Docker-Content-Digest", forged)
					w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
					w.Header().Set("Content-Length", "100")
					return true
				case strings.HasSuffix(req.URL.Path, "/manifests/"+forged):
					req.URL.Path = strings.TrimSuffix(req.URL.Path, forged) + digest
				}
				return false
			}
		}, 0, `does not match requested digest: "sha256:` + otherDigest() + `"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			reg := registrytest.New(t)
			digest := reg.Push("team/app", "1", registrytest.Image(t))
			reg.Intercept(tc.hook(digest))
			took, alloc, err := hostileResolve(t, reg, tc.timeout)
			t.Logf("%v (in %s, %d MiB allocated)", err, took.Round(time.Millisecond), alloc>>20)
			g.Expect(err).To(HaveOccurred())
			want := tc.message
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, digest)
			}
			g.Expect(err.Error()).To(ContainSubstring(want))
			g.Expect(registry.KindOf(err)).To(Equal(registry.KindUnavailable), "retried with backoff, never pinned")
			g.Expect(took).To(BeNumerically("<", 5*time.Second), "bounded time")
			g.Expect(alloc).To(BeNumerically("<", 64<<20), "bounded memory: a 1 GiB answer is never held")
		})
	}
}

func otherDigest() string {
	sum := sha256.Sum256([]byte("other"))
	return hex.EncodeToString(sum[:])
}
