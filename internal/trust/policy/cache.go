package policy

import (
	"sync"
	"time"

	"github.com/trainenv/trainenv/internal/trust"
)

// cache holds verdicts by key (digest and every matching policy's version; see cacheKey)
// until they expire. It is bounded: when full, expired entries go first, then arbitrary
// ones; a lost entry only costs one more verification.
type cache struct {
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[string]cacheEntry
}

type cacheEntry struct {
	verdict trust.Verdict
	expires time.Time
}

func newCache(size int, now func() time.Time) *cache {
	return &cache{max: size, now: now, entries: map[string]cacheEntry{}}
}

func (c *cache) get(key string) (trust.Verdict, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return trust.Verdict{}, false
	}
	if !c.now().Before(e.expires) {
		delete(c.entries, key)
		return trust.Verdict{}, false
	}
	return e.verdict, true
}

// put stores a verdict for ttl; errors and a zero ttl are not stored.
func (c *cache) put(key string, v trust.Verdict, err error, ttl time.Duration) {
	if err != nil || ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.entries) >= c.max {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[key] = cacheEntry{verdict: v, expires: now.Add(ttl)}
}

// matchMemo remembers which policies match which images. policy-controller's glob
// matching compiles a regular expression per call, most of the cost of a cached verdict;
// a policy's globs cannot change without its version changing, which is in the key.
type matchMemo struct {
	mu sync.Mutex
	m  map[string]matchResult
}

type matchResult struct {
	matched bool
	err     error
}

const maxMatchMemo = 16384

func (mm *matchMemo) get(c *compiled, image string, match func() (bool, error)) (bool, error) {
	key := c.name + "=" + c.version + "|" + image
	mm.mu.Lock()
	r, ok := mm.m[key]
	mm.mu.Unlock()
	if ok {
		return r.matched, r.err
	}
	r.matched, r.err = match()
	mm.mu.Lock()
	if mm.m == nil || len(mm.m) >= maxMatchMemo {
		mm.m = map[string]matchResult{} // rare; a miss only costs one glob match
	}
	mm.m[key] = r
	mm.mu.Unlock()
	return r.matched, r.err
}
