package cuda_test

import (
	"testing"

	"github.com/trainenv/trainenv/internal/cuda"
)

func TestMinorVersionCompatibility(t *testing.T) {
	cases := []struct {
		name    string
		req     string
		node    cuda.Node
		strict  bool
		relaxed bool
	}{
		{"12.4 image on 535 (12.2)", "cuda>=12.4", driver535, false, true},
		{"12.8 image on 535 (12.2)", "cuda>=12.8", driver535, false, true},
		{"12.1 image on 470 (11.4): other major", "cuda>=12.1", driver470, false, false},
		{"13.0 image on 580 (13.0)", "cuda>=13.0", driver580, true, true},
		{"12.4 on a 12.x driver below the minimum", "cuda>=12.4", cuda.Node{CUDA: v("12.0"), Driver: v("520.61.05")}, false, false},
		{"other constraints still apply", "cuda>=12.4,brand=geforce", driver535, false, false},
		{"brand alternative unaffected", "cuda>=12.4 brand=tesla,driver>=535,driver<536", driver535, true, true},
		{"cuda<= is never relaxed", "cuda<=12.0", driver535, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := cuda.FromValues([]string{tc.req}, "test")
			if err != nil {
				t.Fatal(err)
			}
			relaxed := cuda.WithMinorVersionCompatibility(rs)
			if got := rs.Holds(tc.node); got != tc.strict {
				t.Errorf("strict: %v, want %v", got, tc.strict)
			}
			if got := relaxed.Holds(tc.node); got != tc.relaxed {
				t.Errorf("relaxed %s: %v, want %v", relaxed, got, tc.relaxed)
			}
			// The relaxed form is still the toolkit's grammar.
			for _, r := range relaxed.All {
				if _, err := cuda.Parse(r.String()); err != nil {
					t.Errorf("relaxed form %q does not parse: %v", r, err)
				}
			}
		})
	}
}
