package plugin

import (
	"math/rand/v2"
	"time"
)

// Backoff spaces out reconnection attempts: Initial, then Factor times longer each failure,
// capped at Max, each delay stretched by up to Jitter of itself so that many clients that
// lost the same API server do not come back in lockstep. Reset after a connection proved
// healthy. Not safe for concurrent use.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
	Factor  float64
	Jitter  float64
	// Rand returns a number in [0, 1); nil uses math/rand.
	Rand func() float64

	next time.Duration
}

// DefaultBackoff is what connect and ssh-proxy use: a blip costs half a second, an API
// server or pod that stays away is asked every 30 s.
func DefaultBackoff() *Backoff {
	return &Backoff{Initial: 500 * time.Millisecond, Max: 30 * time.Second, Factor: 2, Jitter: 0.2}
}

// Next returns how long to wait before the next attempt.
func (b *Backoff) Next() time.Duration {
	if b.next == 0 {
		b.next = b.Initial
	}
	d := b.next
	b.next = min(time.Duration(float64(b.next)*b.Factor), b.Max)
	r := rand.Float64
	if b.Rand != nil {
		r = b.Rand
	}
	return d + time.Duration(b.Jitter*r()*float64(d))
}

// Reset starts again from Initial.
func (b *Backoff) Reset() { b.next = 0 }
