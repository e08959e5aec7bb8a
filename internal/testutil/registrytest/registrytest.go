// Package registrytest runs go-containerregistry's in-process registry for tests and pushes
// small images to it: real manifests, configs and layers, no Docker.
package registrytest

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry is an in-process OCI registry on loopback.
type Registry struct {
	t       testing.TB
	server  *httptest.Server
	handler http.Handler
	// Host is host:port of the registry, e.g. 127.0.0.1:41234.
	Host string

	mu        sync.Mutex
	requests  []string
	down      bool
	throttle  int
	user      string
	password  string
	intercept func(http.ResponseWriter, *http.Request) bool
}

// Option changes the registry New starts.
type Option func(*[]registry.Option)

// WithReferrersAPI makes the registry serve the OCI 1.1 referrers API. Without it, as
// distribution 2.8, it has none and clients keep referrers under the sha256-<hex> tag.
func WithReferrersAPI() Option {
	return func(o *[]registry.Option) { *o = append(*o, registry.WithReferrersSupport(true)) }
}

// New starts a registry that is closed when the test ends.
func New(t testing.TB, opts ...Option) *Registry {
	t.Helper()
	r := &Registry{t: t}
	ropts := []registry.Option{registry.Logger(nopLogger())}
	for _, o := range opts {
		o(&ropts)
	}
	handler := registry.New(ropts...)
	r.handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		down, user, password, intercept := r.down, r.user, r.password, r.intercept
		r.requests = append(r.requests, req.Method+" "+req.URL.Path)
		throttled := r.throttle > 0 && req.URL.Path != "/v2/"
		if throttled {
			r.throttle--
		}
		r.mu.Unlock()
		if throttled {
			// As Docker Hub answers a pull over its rate limit.
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}`))
			return
		}
		if intercept != nil && intercept(w, req) {
			return
		}
		if down {
			http.Error(w, "registry is down for maintenance", http.StatusServiceUnavailable)
			return
		}
		if u, p, ok := req.BasicAuth(); user != "" && (!ok || u != user || p != password) {
			w.Header().Set("WWW-Authenticate", `Basic realm="registrytest"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
		handler.ServeHTTP(w, req)
	})
	r.server = httptest.NewServer(r.handler)
	t.Cleanup(func() { r.current().Close() })
	r.Host = strings.TrimPrefix(r.server.URL, "http://")
	return r
}

func (r *Registry) current() *httptest.Server {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.server
}

// Kill stops the registry process, as far as clients can tell: open connections are cut
// and new ones refused. What was pushed is kept (its storage survives) for Restart.
func (r *Registry) Kill() {
	srv := r.current()
	srv.CloseClientConnections()
	srv.Close()
}

// Restart serves again, on the same address, after Kill.
func (r *Registry) Restart() {
	r.t.Helper()
	l, err := net.Listen("tcp", r.Host)
	if err != nil {
		r.t.Fatalf("restarting the registry on %s: %v", r.Host, err)
	}
	srv := httptest.NewUnstartedServer(r.handler)
	_ = srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	r.mu.Lock()
	r.server = srv
	r.mu.Unlock()
}

// SetDown makes every request fail with 503 (down=true) or serves again (false).
func (r *Registry) SetDown(down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = down
}

// ThrottleNext answers the next n requests (other than the /v2/ ping) with 429 Too Many
// Requests, the registry's rate limit.
func (r *Registry) ThrottleNext(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.throttle = n
}

// Intercept runs h before the registry serves each request: h may answer it itself
// (returning true) or change it (e.g. its path) and let the registry serve it (false).
// Tests use it to make the registry misbehave. nil removes the hook.
func (r *Registry) Intercept(h func(w http.ResponseWriter, req *http.Request) (handled bool)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.intercept = h
}

// RequireBasicAuth makes the registry refuse requests without these credentials.
func (r *Registry) RequireBasicAuth(user, password string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.user, r.password = user, password
}

// Requests returns the requests served so far ("METHOD /path") and forgets them.
func (r *Registry) Requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.requests
	r.requests = nil
	return out
}

// Image returns a small random image whose config carries env.
func Image(t testing.TB, env ...string) v1.Image {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
	cfg.Config.User = "1000"
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Push writes img to repo:tag and returns its digest.
func (r *Registry) Push(repo, tag string, img v1.Image) string {
	r.t.Helper()
	ref := r.ref(repo, tag)
	if err := remote.Write(ref, img, r.auth()); err != nil {
		r.t.Fatal(err)
	}
	return digestOf(r.t, img.Digest)
}

// PushIndex writes a multi-platform index of the images (keyed "os/arch") to repo:tag and
// returns the index digest.
func (r *Registry) PushIndex(repo, tag string, images map[string]v1.Image) string {
	r.t.Helper()
	var idx v1.ImageIndex = empty.Index
	for platform, img := range images {
		p, err := v1.ParsePlatform(platform)
		if err != nil {
			r.t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: p}})
	}
	if err := remote.WriteIndex(r.ref(repo, tag), idx, r.auth()); err != nil {
		r.t.Fatal(err)
	}
	return digestOf(r.t, idx.Digest)
}

// Digest returns the digest of img.
func Digest(t testing.TB, img v1.Image) string { return digestOf(t, img.Digest) }

func (r *Registry) auth() remote.Option {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.user == "" {
		return remote.WithAuth(authn.Anonymous)
	}
	return remote.WithAuth(&authn.Basic{Username: r.user, Password: r.password})
}

func (r *Registry) ref(repo, tag string) name.Reference {
	ref, err := name.ParseReference(r.Host + "/" + repo + ":" + tag)
	if err != nil {
		r.t.Fatal(err)
	}
	return ref
}

func digestOf(t testing.TB, f func() (v1.Hash, error)) string {
	t.Helper()
	h, err := f()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}
