package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/trust"
)

// fakeReferrers is an OCI index listing n sigstore bundle referrers (never served), or
// the given manifest digests.
func fakeReferrers(n int, digests ...string) []byte {
	type desc struct {
		MediaType    string            `json:"mediaType"`
		ArtifactType string            `json:"artifactType"`
		Size         int64             `json:"size"`
		Digest       string            `json:"digest"`
		Annotations  map[string]string `json:"annotations"`
	}
	idx := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Manifests     []desc `json:"manifests"`
	}{SchemaVersion: 2, MediaType: "application/vnd.oci.image.index.v1+json"}
	for i := range n {
		digests = append(digests, fmt.Sprintf("sha256:%064x", i+1))
	}
	for _, d := range digests {
		idx.Manifests = append(idx.Manifests, desc{MediaType: "application/vnd.oci.image.manifest.v1+json", ArtifactType: bundleV03,
			Size: 500, Digest: d, Annotations: map[string]string{bundlePredicateAnnotation: cosignSignPredicate}})
	}
	raw, _ := json.Marshal(idx)
	return raw
}

func serveIndex(w http.ResponseWriter, raw []byte) {
	w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
	w.Header().Set("Content-Length", fmt.Sprint(len(raw)))
	_, _ = w.Write(raw)
}

// Registries that misbehave while bundles are read: the caps and the time budget hold for
// the referrers index (API or tag) and the bundles as for legacy signatures. The digest
// carries no legacy signature, so the bundles decide.
func TestHostileRegistryDuringBundleVerification(t *testing.T) {
	const hugeLayer = "sha256:0000000000000000000000000000000000000000000000000000000000000001"
	isIndex := func(req *http.Request, ref string) bool {
		d := digest(t, ref)
		return req.Method == http.MethodGet && (req.URL.Path == "/v2/"+d.RepositoryStr()+"/referrers/"+d.DigestStr() ||
			req.URL.Path == "/v2/"+d.RepositoryStr()+"/manifests/"+strings.Replace(d.DigestStr(), ":", "-", 1))
	}
	cases := []struct {
		name    string
		api     bool
		hook    func(img string) func(http.ResponseWriter, *http.Request) bool
		message string
	}{
		{"referrers tag listing 2,000 bundles", false, func(img string) func(http.ResponseWriter, *http.Request) bool {
			return func(w http.ResponseWriter, req *http.Request) bool {
				if !isIndex(req, img) {
					return false
				}
				serveIndex(w, fakeReferrers(2000))
				return true
			}
		}, "2000 referrers attached to one digest, over trainenv's limit of 100"},
		{"referrers API listing 500 bundles", true, func(img string) func(http.ResponseWriter, *http.Request) bool {
			return func(w http.ResponseWriter, req *http.Request) bool {
				if !isIndex(req, img) {
					return false
				}
				serveIndex(w, fakeReferrers(500))
				return true
			}
		}, "500 referrers attached to one digest, over trainenv's limit of 100"},
		{"referrers index of 1 GiB", true, func(img string) func(http.ResponseWriter, *http.Request) bool {
			return func(w http.ResponseWriter, req *http.Request) bool {
				if !isIndex(req, img) {
					return false
				}
				w.Header().Set("Content-Length", fmt.Sprint(1<<30))
				return true
			}
		}, "the registry sent a manifest of 1073741824 bytes, over trainenv's limit of 4194304"},
		{"bundle of 1 GiB declared as 100 MiB", false, func(img string) func(http.ResponseWriter, *http.Request) bool {
			// One real referrer manifest whose layer is huge.
			m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":%q,`+
				`"config":{"mediaType":"application/vnd.oci.empty.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},`+
				`"layers":[{"mediaType":%q,"size":%d,"digest":%q}]}`, bundleV03, bundleV03, 100<<20, hugeLayer))
			sum := sha256.Sum256(m)
			md := "sha256:" + hex.EncodeToString(sum[:])
			return func(w http.ResponseWriter, req *http.Request) bool {
				switch {
				case isIndex(req, img):
					serveIndex(w, fakeReferrers(0, md))
				case strings.HasSuffix(req.URL.Path, "/manifests/"+md):
					serveManifest(w, m)
				case strings.HasSuffix(req.URL.Path, "/blobs/"+hugeLayer):
					serveGiB(w)
				default:
					return false
				}
				return true
			}
		}, "the registry sent a blob of more than 16777216 bytes, over trainenv's limit"},
		{"slow loris on the referrers", false, func(img string) func(http.ResponseWriter, *http.Request) bool {
			return func(_ http.ResponseWriter, req *http.Request) bool {
				if !isIndex(req, img) {
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
			var opts []registrytest.Option
			if tc.api {
				opts = append(opts, registrytest.WithReferrersAPI())
			}
			reg := registrytest.New(t, opts...)
			release := newSigner(t)
			img := push(t, reg, "team/app")
			reg.Intercept(tc.hook(img))
			v := New(&StaticSource{Policies: pl(keyPolicy("release", reg.Host+"/team/*", release.publicPEM))}, Options{Timeout: time.Second})

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
