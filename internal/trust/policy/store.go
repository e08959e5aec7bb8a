package policy

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/sigstore/policy-controller/pkg/apis/config"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"

	"github.com/trainenv/trainenv/internal/trust/vulngate"
)

// store keeps compiled policies and trust roots between verifications: compiling parses
// keys and (for TrustRoots from TUF) verifies metadata, which is too slow for every call.
// An entry is reused while the object's UID and generation are unchanged; entries built
// from referenced Secrets or ConfigMaps, or from a TUF remote, are rebuilt after refresh,
// since a change there does not bump the policy's generation.
type store struct {
	src     PolicySource
	refresh time.Duration // rebuild policies built from Secrets, ConfigMaps, TUF remotes
	retry   time.Duration // rebuild invalid policies
	now     func() time.Time

	mu       sync.Mutex
	policies map[string]storedPolicy
	roots    map[string]storedRoot
}

type storedPolicy struct {
	c  *compiled
	at time.Time
}

type storedRoot struct {
	r      *compiledRoot
	remote bool
	at     time.Time
}

// current lists the policies and returns each one compiled.
func (s *store) current(ctx context.Context) ([]*compiled, error) {
	items, err := s.src.ClusterImagePolicies(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*compiled, 0, len(items))
	seen := make(map[string]bool, len(items))
	for i := range items {
		in := &items[i]
		seen[in.Name] = true
		s.mu.Lock()
		e, ok := s.policies[in.Name]
		s.mu.Unlock()
		if !ok || s.stale(e, in) {
			e = storedPolicy{c: compile(ctx, s.src, in), at: s.now()}
			s.mu.Lock()
			s.policies[in.Name] = e
			s.mu.Unlock()
		}
		out = append(out, e.c)
	}
	s.mu.Lock()
	for n := range s.policies {
		if !seen[n] {
			delete(s.policies, n)
		}
	}
	s.mu.Unlock()
	return out, nil
}

// stale says whether a compiled policy must be rebuilt: the object changed, its referenced
// Secrets or ConfigMaps may have (every refresh), or it was invalid (every retry: a
// missing Secret that appears should be seen soon).
func (s *store) stale(e storedPolicy, in *pcv1alpha1.ClusterImagePolicy) bool {
	age := s.now().Sub(e.at)
	switch {
	case e.c.uid != string(in.UID) || e.c.generation != in.Generation || e.c.gateSpec != in.Annotations[vulngate.AnnotationGate]:
		return true
	case e.c.err != nil:
		return age > s.retry
	case e.c.hasRefs:
		return age > s.refresh
	}
	return false
}

// sigstoreKeys returns the Sigstore keys of the named TrustRoots, and their versions for
// the cache key. A missing or invalid root is an invalid policy; an unreachable TUF remote
// is a plain error, retried.
func (s *store) sigstoreKeys(ctx context.Context, names []string) (*config.SigstoreKeysMap, []string, error) {
	keys := &config.SigstoreKeysMap{SigstoreKeys: map[string]*config.SigstoreKeys{}}
	if len(names) == 0 {
		return keys, nil, nil
	}
	items, err := s.src.TrustRoots(ctx)
	if err != nil {
		return nil, nil, err
	}
	byName := make(map[string]*pcv1alpha1.TrustRoot, len(items))
	for i := range items {
		byName[items[i].Name] = &items[i]
	}
	sort.Strings(names)
	var versions []string
	for i, n := range names {
		if i > 0 && names[i-1] == n {
			continue
		}
		in, ok := byName[n]
		if !ok {
			return nil, nil, fmt.Errorf("%w: TrustRoot %s does not exist", errInvalid, n)
		}
		r := s.root(ctx, in)
		if r.fetchErr != nil {
			return nil, nil, r.fetchErr
		}
		if r.err != nil {
			return nil, nil, r.err
		}
		keys.SigstoreKeys[n] = r.keys
		versions = append(versions, "root:"+n+"="+r.version)
	}
	return keys, versions, nil
}

func (s *store) root(ctx context.Context, in *pcv1alpha1.TrustRoot) *compiledRoot {
	version := fmt.Sprintf("%s/%d", in.UID, in.Generation)
	s.mu.Lock()
	e, ok := s.roots[in.Name]
	s.mu.Unlock()
	if ok && e.r.version == version && e.r.fetchErr == nil && !(e.remote && s.now().Sub(e.at) > s.refresh) {
		return e.r
	}
	e = storedRoot{r: compileRoot(ctx, in), remote: in.Spec.Remote != nil, at: s.now()}
	s.mu.Lock()
	s.roots[in.Name] = e
	s.mu.Unlock()
	return e.r
}

func isInvalid(err error) bool { return errors.Is(err, errInvalid) }
