package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/trust"
)

// Registries that misbehave while signatures are read. Each verification must end in
// bounded time and memory with a verdict that lets nothing run and says what the registry
// did; the error is returned, so the reconciler retries with backoff.

// attachmentPath is the path of cosign's .sig/.att manifest for img (repository@digest).
func attachmentPath(t *testing.T, img, suffix string) string {
	ref := digest(t, img)
	return "/v2/" + ref.RepositoryStr() + "/manifests/" + strings.Replace(ref.DigestStr(), ":", "-", 1) + "." + suffix
}

// fakeAttachments is a cosign attachment manifest with n layers of the given declared size
// and digest (the layers are never served: the manifest alone must be refused).
func fakeAttachments(n int, size int64, layerDigest string) []byte {
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Size        int64             `json:"size"`
		Digest      string            `json:"digest"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	m := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Config        desc   `json:"config"`
		Layers        []desc `json:"layers"`
	}{SchemaVersion: 2, MediaType: "application/vnd.oci.image.manifest.v1+json",
		Config: desc{MediaType: "application/vnd.oci.image.config.v1+json", Size: 2, Digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}}
	for i := range n {
		d := layerDigest
		if d == "" {
			sum := sha256.Sum256([]byte(fmt.Sprint(i)))
			d = "sha256:" + hex.EncodeToString(sum[:])
		}
		m.Layers = append(m.Layers, desc{MediaType: "application/vnd.dev.cosign.simplesigning.v1+json", Size: size, Digest: d,
			Annotations: map[string]string{"dev.cosignproject.cosign/signature": "MEUCIQ=="}})
	}
	raw, _ := json.Marshal(m)
	return raw
}

func serveManifest(w http.ResponseWriter, raw []byte) {
	w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	sum := sha256.Sum256(raw)
	w.Header().Set("Docker-Content-Digest", "sha256:"+hex.EncodeToString(sum[:]))
	w.Header().Set("Content-Length", fmt.Sprint(len(raw)))
	_, _ = w.Write(raw)
}

func TestHostileRegistryDuringVerification(t *testing.T) {
	const hugeLayer = "sha256:0000000000000000000000000000000000000000000000000000000000000001"
	cases := []struct {
		name        string
		attestation bool
		hook        func(sig string) func(http.ResponseWriter, *http.Request) bool
		message     string
	}{
		{"2,000 signatures (more than cosign's own cap of 1,000)", false, func(sig string) func(http.ResponseWriter, *http.Request) bool {
			return func(w http.ResponseWriter, req *http.Request) bool {
				if req.URL.Path != sig || req.Method != http.MethodGet {
					return false
				}
				serveManifest(w, fakeAttachments(2000, 100, ""))
				return true
			}
		}, "2000 signatures attached to one digest, over trainenv's limit of 100"},
		{"500 signatures (under cosign's cap)", false, func(sig string) func(http.ResponseWriter, *http.Request) bool {
			return func(w http.ResponseWriter, req *http.Request) bool {
				if req.URL.Path != sig || req.Method != http.MethodGet {
					return false
				}
				serveManifest(w, fakeAttachments(500, 100, ""))
				return true
			}
		}, "500 signatures attached to one digest, over trainenv's limit of 100"},
		{"3,000 attestations", true, func(sig string) func(http.ResponseWriter, *http.Request) bool {
			att := strings.TrimSuffix(sig, ".sig") + ".att"
			return func(w http.ResponseWriter, req *http.Request) bool {
				if req.URL.Path != att || req.Method != http.MethodGet {
					return false
				}
				serveManifest(w, fakeAttachments(3000, 100, ""))
				return true
			}
		}, "3000 attestations attached to one digest, over trainenv's limit of 100"},
		{"signature payload of 1 GiB declared as 100 MiB (under cosign's 128 MiB)", false, func(sig string) func(http.ResponseWriter, *http.Request) bool {
			return func(w http.ResponseWriter, req *http.Request) bool {
				switch {
				case req.URL.Path == sig && req.Method == http.MethodGet:
					serveManifest(w, fakeAttachments(1, 100<<20, hugeLayer))
				case strings.HasSuffix(req.URL.Path, "/blobs/"+hugeLayer):
					serveGiB(w)
				default:
					return false
				}
				return true
			}
		}, "the registry sent a blob of more than 16777216 bytes, over trainenv's limit"},
		{"signature manifest of 1 GiB", false, func(sig string) func(http.ResponseWriter, *http.Request) bool {
			return func(w http.ResponseWriter, req *http.Request) bool {
				if req.URL.Path != sig || req.Method != http.MethodGet {
					return false
				}
				w.Header().Set("Content-Length", fmt.Sprint(1<<30))
				return true
			}
		}, "the registry sent a manifest of 1073741824 bytes, over trainenv's limit of 4194304"},
		{"redirect loop", false, func(sig string) func(http.ResponseWriter, *http.Request) bool {
			return func(w http.ResponseWriter, req *http.Request) bool {
				switch req.URL.Path {
				case sig:
					http.Redirect(w, req, sig+"-loop", http.StatusFound)
				case sig + "-loop":
					http.Redirect(w, req, sig, http.StatusFound)
				default:
					return false
				}
				return true
			}
		}, "stopped after 10 redirects"},
		{"slow loris", false, func(sig string) func(http.ResponseWriter, *http.Request) bool {
			return func(_ http.ResponseWriter, req *http.Request) bool {
				if req.URL.Path != sig {
					return false
				}
				<-req.Context().Done()
				return true
			}
		}, "did not finish within 1s, the time budget of one verification"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			reg := registrytest.New(t)
			release := newSigner(t)
			img := push(t, reg, "team/app")
			release.sign(t, img)
			p := keyPolicy("release", reg.Host+"/team/*", release.publicPEM)
			if tc.attestation {
				release.attest(t, img, trustedBuilder)
				p = provenancePolicy("release", reg.Host+"/team/*", release.publicPEM, trustedBuilder)
			}
			reg.Intercept(tc.hook(attachmentPath(t, img, "sig")))
			v := New(&StaticSource{Policies: []pcv1alpha1.ClusterImagePolicy{p}}, Options{Timeout: time.Second})

			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			got, err := v.Verify(bg, trust.Request{Image: img})
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			t.Logf("%s (%s, %d MiB allocated): %s", got.Reason, took.Round(time.Millisecond), (after.TotalAlloc-before.TotalAlloc)>>20, got.Message)
			g.Expect(err).To(HaveOccurred(), "the registry, not the digest, decided: retried")
			g.Expect(got.Allowed()).To(BeFalse())
			g.Expect(got.Reason).To(Equal(trainenvv1.ReasonRegistryUnavailable))
			g.Expect(got.Message).To(ContainSubstring(tc.message))
			g.Expect(took).To(BeNumerically("<", 5*time.Second))
			g.Expect(after.TotalAlloc - before.TotalAlloc).To(BeNumerically("<", 96<<20))
		})
	}
}

// A signature blob whose bytes do not match its digest is not a signature.
func TestSignatureNotMatchingItsDigest(t *testing.T) {
	g := NewWithT(t)
	reg := registrytest.New(t)
	release := newSigner(t)
	img := push(t, reg, "team/app")
	release.sign(t, img)
	reg.Intercept(func(w http.ResponseWriter, req *http.Request) bool {
		// Every blob answers with its real bytes, one of them changed: same size, other digest.
		if !strings.Contains(req.URL.Path, "/blobs/") || req.Method != http.MethodGet || req.Header.Get("X-Real") != "" {
			return false
		}
		orig, _ := http.NewRequest(http.MethodGet, "http://"+reg.Host+req.URL.Path, nil)
		orig.Header.Set("X-Real", "1")
		resp, err := http.DefaultClient.Do(orig)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		body[len(body)/2] ^= 1
		_, _ = w.Write(body)
		return true
	})
	v := New(&StaticSource{Policies: pl(keyPolicy("release", reg.Host+"/team/*", release.publicPEM))}, Options{})
	got, err := v.Verify(bg, trust.Request{Image: img})
	t.Logf("%s: %s", got.Reason, got.Message)
	g.Expect(err).To(HaveOccurred())
	g.Expect(got.Allowed()).To(BeFalse())
	g.Expect(got.Reason).To(Equal(trainenvv1.ReasonRegistryUnavailable), "the registry is broken; the signer is not to blame")
	g.Expect(got.Message).To(ContainSubstring("error verifying sha256 checksum"))
}

// serveGiB writes 1 GiB of zeros, or as much as the client reads before it hangs up.
func serveGiB(w http.ResponseWriter) {
	buf := make([]byte, 1<<20)
	for range 1024 {
		if _, err := w.Write(buf); err != nil {
			return
		}
	}
}
