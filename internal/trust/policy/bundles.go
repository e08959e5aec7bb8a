package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
)

// Sigstore bundles, as today's cosign (v3 by default, v2 with --new-bundle-format) attaches
// them: one OCI manifest per bundle, whose single layer is the bundle JSON, referring to the
// signed digest through its subject field. Registries list them through the OCI referrers
// API, or, without it (distribution 2.8), under the tag sha256-<hex> as an OCI index that
// the pusher maintains. cosign marks each one with the bundle's media type as artifactType
// and the statement's predicate type as an annotation.
const (
	bundleMediaTypePrefix = "application/vnd.dev.sigstore.bundle"
	// bundlePredicateAnnotation names the in-toto predicate type of the bundle's statement
	// in its referrer descriptor. It is not signed: it only saves fetching bundles of the
	// other kind; the signed statement decides what a bundle is.
	bundlePredicateAnnotation = "dev.sigstore.bundle.predicateType"
	// cosignSignPredicate is the predicate type of `cosign sign` in the bundle format: a
	// statement about the digest that carries no predicate, cosign's image signature.
	cosignSignPredicate = "https://sigstore.dev/cosign/sign/v1"
)

// bundleKind says which bundles a caller wants.
type bundleKind int

const (
	bundleSignatures bundleKind = iota
	bundleAttestations
)

// fetchedBundle is one bundle referrer, read and parsed (not yet verified).
type fetchedBundle struct {
	bundle *sgbundle.Bundle
	// digest is the bundle blob's digest (what a legacy attestation's layer digest is).
	digest string
	err    error
}

// bundleFetcher reads the bundles attached to one digest, for one evaluation: the referrers
// index once per repository, and each bundle once, however many policies and authorities
// ask. Every request goes through the evaluation's transport, so the caps on sizes and on
// the number of referrers, the time budget and the request metrics apply as to legacy
// signatures.
type bundleFetcher struct {
	opts []remote.Option

	mu      sync.Mutex
	indexes map[string]*indexOnce  // repository -> its referrers of the digest
	bundles map[string]*bundleOnce // repository@manifest digest -> the bundle
}

type indexOnce struct {
	once sync.Once
	idx  *v1.IndexManifest
	err  error
}

type bundleOnce struct {
	once sync.Once
	b    fetchedBundle
}

func newBundleFetcher(opts []remote.Option) *bundleFetcher {
	return &bundleFetcher{opts: opts, indexes: map[string]*indexOnce{}, bundles: map[string]*bundleOnce{}}
}

// fetch returns the bundles of kind attached to ref's digest in repo (ref's own repository,
// or the authority's signature source). Referrers that are not sigstore bundles (SBOM
// artifacts, Notation signatures, ...) are skipped without being fetched, as are bundles
// whose annotation says they are of the other kind. Bundles that cannot be read or parsed
// come back with their error; registry failures are seen by the evaluation's recorder.
func (f *bundleFetcher) fetch(ctx context.Context, ref name.Digest, repo name.Repository, kind bundleKind) ([]fetchedBundle, error) {
	idx, err := f.index(ctx, repo.Digest(ref.DigestStr()))
	if err != nil {
		return nil, err
	}
	var out []fetchedBundle
	for _, d := range idx.Manifests {
		if !maybeBundle(d) {
			continue
		}
		if pt, ok := d.Annotations[bundlePredicateAnnotation]; ok && (pt == cosignSignPredicate) != (kind == bundleSignatures) {
			continue
		}
		out = append(out, f.bundle(ctx, repo.Digest(d.Digest.String())))
	}
	return out, nil
}

// maybeBundle tells from a referrer's descriptor whether it may be a sigstore bundle: its
// artifactType is a bundle media type, or says nothing (the empty config's media type,
// which some registries report instead of the manifest's artifactType, or none) while
// cosign's annotations are there or absent. SBOMs, Notation signatures and other
// artifacts are not fetched.
func maybeBundle(d v1.Descriptor) bool {
	switch {
	case strings.HasPrefix(d.ArtifactType, bundleMediaTypePrefix):
		return true
	case d.ArtifactType == "" || d.ArtifactType == emptyConfigMediaType:
		return true
	}
	return false
}

// emptyConfigMediaType is the OCI empty descriptor's media type, the config of artifacts.
const emptyConfigMediaType = "application/vnd.oci.empty.v1+json"

func (f *bundleFetcher) index(ctx context.Context, d name.Digest) (*v1.IndexManifest, error) {
	f.mu.Lock()
	e, ok := f.indexes[d.Context().Name()]
	if !ok {
		e = &indexOnce{}
		f.indexes[d.Context().Name()] = e
	}
	f.mu.Unlock()
	e.once.Do(func() {
		var ii v1.ImageIndex
		ii, e.err = remote.Referrers(d, append(f.opts, remote.WithContext(ctx))...)
		if e.err == nil {
			e.idx, e.err = ii.IndexManifest()
		}
		if e.err != nil {
			e.err = fmt.Errorf("listing the OCI referrers of %s: %w", d, e.err)
		}
	})
	return e.idx, e.err
}

func (f *bundleFetcher) bundle(ctx context.Context, d name.Digest) fetchedBundle {
	f.mu.Lock()
	e, ok := f.bundles[d.String()]
	if !ok {
		e = &bundleOnce{}
		f.bundles[d.String()] = e
	}
	f.mu.Unlock()
	e.once.Do(func() { e.b = f.read(ctx, d) })
	return e.b
}

// read fetches one bundle manifest and its single layer, as cosign does (ociremote.Bundle),
// and parses the bundle (media types v0.1 to v0.3).
func (f *bundleFetcher) read(ctx context.Context, d name.Digest) fetchedBundle {
	fail := func(err error) fetchedBundle {
		return fetchedBundle{err: fmt.Errorf("sigstore bundle %s: %w", d.DigestStr(), err)}
	}
	img, err := remote.Image(d, append(f.opts, remote.WithContext(ctx))...)
	if err != nil {
		return fail(err)
	}
	layers, err := img.Layers()
	if err != nil {
		return fail(err)
	}
	if len(layers) != 1 {
		return fail(fmt.Errorf("%d layers, expected exactly one", len(layers)))
	}
	mt, err := layers[0].MediaType()
	if err != nil {
		return fail(err)
	}
	if !strings.HasPrefix(string(mt), bundleMediaTypePrefix) {
		return fail(fmt.Errorf("layer of media type %s, not a sigstore bundle", mt))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		return fail(err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(rc)
	if err != nil {
		return fail(err)
	}
	var b sgbundle.Bundle
	if err := b.UnmarshalJSON(raw); err != nil {
		return fail(fmt.Errorf("parsing: %w", err))
	}
	sum := sha256.Sum256(raw)
	return fetchedBundle{bundle: &b, digest: "sha256:" + hex.EncodeToString(sum[:])}
}

// errNoBundles: the digest has no bundle of the kind asked for.
var errNoBundles = errors.New("no sigstore bundles attached as OCI referrers")
