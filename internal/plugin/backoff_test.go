package plugin

import (
	"testing"
	"time"
)

func TestBackoffGrowsToItsCapAndResets(t *testing.T) {
	b := &Backoff{Initial: time.Second, Max: 10 * time.Second, Factor: 2, Rand: func() float64 { return 0 }}
	var got []time.Duration
	for range 6 {
		got = append(got, b.Next())
	}
	want := []time.Duration{1, 2, 4, 8, 10, 10}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("delays %v, want %v seconds", got, want)
		}
	}
	b.Reset()
	if d := b.Next(); d != time.Second {
		t.Fatalf("after Reset: %v, want 1s", d)
	}
}

func TestBackoffJitterStretchesWithinBounds(t *testing.T) {
	b := &Backoff{Initial: time.Second, Max: time.Minute, Factor: 2, Jitter: 0.5, Rand: func() float64 { return 0.999 }}
	if d := b.Next(); d <= time.Second || d >= 1500*time.Millisecond {
		t.Fatalf("first delay %v, want within (1s, 1.5s)", d)
	}
	d := DefaultBackoff()
	for range 1000 {
		if n := d.Next(); n < 500*time.Millisecond || n > 36*time.Second {
			t.Fatalf("default backoff gave %v, outside [0.5s, 36s]", n)
		}
	}
}
