package controller

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/trainenv/trainenv/internal/registry"
)

// tagShareTTL is how long an anonymous tag lookup answers for every environment that asks
// for the same image and platform. Creating 5,000 environments from 20 tags cost two
// registry requests per environment (ping, HEAD), on the path to their workload; shared,
// it costs two per tag every few seconds. Short against followTagIntervalSeconds (30 s at
// least): a tag that moves is seen about as soon as before.
const tagShareTTL = 5 * time.Second

// tagShare shares anonymous tag lookups among environments. Lookups with pull Secrets are
// never shared: whether a registry lets someone read an image depends on their credentials.
type tagShare struct {
	group singleflight.Group
	mu    sync.Mutex
	seen  map[string]sharedLookup
}

type sharedLookup struct {
	res registry.Resolution
	at  time.Time
}

// resolve answers from a lookup of the same key made within tagShareTTL of now, joins one
// in flight, or makes one with lookup. Failures are not kept.
func (s *tagShare) resolve(ctx context.Context, key string, now time.Time, lookup func(context.Context) (registry.Resolution, error)) (registry.Resolution, error) {
	s.mu.Lock()
	if l, ok := s.seen[key]; ok && now.Sub(l.at) >= 0 && now.Sub(l.at) < tagShareTTL {
		s.mu.Unlock()
		return l.res, nil
	}
	s.mu.Unlock()
	v, err, _ := s.group.Do(key, func() (any, error) {
		// The first caller's context bounds the shared lookup; a caller whose context ends
		// first gets its own error from the next pass.
		res, err := lookup(ctx)
		if err != nil {
			return res, err
		}
		s.mu.Lock()
		if s.seen == nil || len(s.seen) > 4096 {
			s.seen = map[string]sharedLookup{}
		}
		s.seen[key] = sharedLookup{res: res, at: now}
		s.mu.Unlock()
		return res, nil
	})
	return v.(registry.Resolution), err
}
