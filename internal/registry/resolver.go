package registry

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"k8s.io/utils/lru"
)

// Resolution is an image reference resolved to the digest that will run.
type Resolution struct {
	// Reference is the parsed spec.image.
	Reference name.Reference
	// TargetDigest is what the reference points at: a manifest or a multi-platform index.
	TargetDigest string
	// Digest is the manifest digest for the requested platform (equal to TargetDigest for a
	// single-platform image).
	Digest string
	// IndexDigest is TargetDigest when it is a multi-platform index, else empty.
	IndexDigest string
	// Platform is the platform that was selected.
	Platform string
	// Config is what later steps need from the image config.
	Config ImageConfig
}

// Pinned is repository@digest, the reference the workload runs.
func (r Resolution) Pinned() string { return Pinned(r.Reference, r.Digest) }

// ImageConfig is the part of the OCI image config that trainenv reads.
type ImageConfig struct {
	Env    []string
	Labels map[string]string
	User   string
}

// Lookup returns the value of an environment variable of the image.
func (c ImageConfig) Lookup(key string) (string, bool) {
	for _, kv := range c.Env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// Resolver resolves references against registries. It is safe for concurrent use. Manifests
// and configs are content-addressed, so what was read for a digest is cached for good; the
// tag itself is looked up (one HEAD request) on every call.
type Resolver struct {
	transport http.RoundTripper
	cache     *lru.Cache
	// Timeout bounds one Resolve, every request included (DefaultTimeout), so that a
	// registry that stops answering cannot hold a reconcile worker.
	Timeout time.Duration
}

// NewResolver returns a Resolver using transport (remote.DefaultTransport if nil), with
// responses capped at the default Limits, counted in the registry metrics as operation
// resolve, and caching up to cacheSize resolved digests.
func NewResolver(transport http.RoundTripper, cacheSize int) *Resolver {
	if transport == nil {
		transport = remote.DefaultTransport
	}
	return &Resolver{
		transport: Instrument(LimitTransport(transport, Limits{}), OperationResolve),
		cache:     lru.New(cacheSize),
		Timeout:   DefaultTimeout,
	}
}

// Request is what to resolve and with which credentials.
type Request struct {
	Image    string
	Platform string
	// Keychain holds the credentials (e.g. from pull Secrets); nil means anonymous.
	Keychain authn.Keychain
}

type cacheKey struct{ repo, digest, platform string }

type cached struct {
	digest, indexDigest string
	config              ImageConfig
}

// Resolve looks up req.Image and returns the digest of its manifest for req.Platform and
// its config. Errors are *Error with a Kind.
func (r *Resolver) Resolve(ctx context.Context, req Request) (Resolution, error) {
	ref, err := ParseReference(req.Image)
	if err != nil {
		return Resolution{}, err
	}
	if r.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.Timeout)
		defer cancel()
	}
	platform, err := ParsePlatform(req.Platform)
	if err != nil {
		return Resolution{}, err
	}
	keychain := req.Keychain
	if keychain == nil {
		keychain = authn.NewMultiKeychain()
	}
	// One puller per call: it pings and authenticates once per repository and reuses the
	// token for every request below.
	puller, err := remote.NewPuller(
		remote.WithTransport(r.transport),
		remote.WithAuthFromKeychain(keychain),
		remote.WithPlatform(platform),
	)
	if err != nil {
		return Resolution{}, err
	}
	// HEAD is not counted as a pull by registries that rate-limit pulls, and it proves
	// the reference exists and that the credentials reach it, even for a digest.
	head, err := puller.Head(ctx, ref)
	if err != nil {
		return Resolution{}, r.failed(ctx, err)
	}
	res := Resolution{Reference: ref, TargetDigest: head.Digest.String(), Platform: req.Platform}
	key := cacheKey{ref.Context().String(), res.TargetDigest, req.Platform}
	if c, ok := r.cache.Get(key); ok {
		hit := c.(cached)
		res.Digest, res.IndexDigest, res.Config = hit.digest, hit.indexDigest, hit.config
		return res, nil
	}
	if err := readManifest(ctx, puller, ref.Context().Digest(res.TargetDigest), platform, &res); err != nil {
		return Resolution{}, r.failed(ctx, err)
	}
	r.cache.Add(key, cached{digest: res.Digest, indexDigest: res.IndexDigest, config: res.Config})
	return res, nil
}

// failed classifies err, saying so when the time budget ran out (the registry's own error
// is then only "context deadline exceeded").
func (r *Resolver) failed(ctx context.Context, err error) error {
	if ctx.Err() == context.DeadlineExceeded {
		return &Error{Kind: KindUnavailable, Err: fmt.Errorf("no complete answer from the registry within %s: %w", r.Timeout, err)}
	}
	return classify(err)
}

// readManifest fills Digest, IndexDigest and Config from the manifest at target, which is
// fetched by digest so that a tag moving meanwhile cannot mix two images.
func readManifest(ctx context.Context, puller *remote.Puller, target name.Digest, platform v1.Platform, res *Resolution) error {
	desc, err := puller.Get(ctx, target)
	if err != nil {
		return err
	}
	image := target
	if desc.MediaType.IsIndex() {
		child, err := selectPlatform(desc, platform)
		if err != nil {
			return err
		}
		res.IndexDigest = res.TargetDigest
		image = target.Context().Digest(child.String())
		if desc, err = puller.Get(ctx, image); err != nil {
			return err
		}
	}
	res.Digest = image.DigestStr()
	img, err := desc.Image()
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	res.Config = ImageConfig{Env: cfg.Config.Env, Labels: cfg.Config.Labels, User: cfg.Config.User}
	return nil
}

// selectPlatform returns the digest of the index entry matching platform.
func selectPlatform(desc *remote.Descriptor, platform v1.Platform) (v1.Hash, error) {
	idx, err := desc.ImageIndex()
	if err != nil {
		return v1.Hash{}, err
	}
	manifest, err := idx.IndexManifest()
	if err != nil {
		return v1.Hash{}, err
	}
	var available []string
	for _, m := range manifest.Manifests {
		if m.Platform == nil {
			continue
		}
		if m.Platform.Satisfies(platform) {
			return m.Digest, nil
		}
		available = append(available, m.Platform.String())
	}
	return v1.Hash{}, &Error{Kind: KindPlatformNotFound,
		Err: fmt.Errorf("image index %s has no manifest for platform %s (it has: %v)", desc.Digest, platform.String(), available)}
}
