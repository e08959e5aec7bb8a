package preflight

import "testing"

func TestArchSupported(t *testing.T) {
	upTo90 := []string{"sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"}
	cases := []struct {
		cc    string
		archs []string
		want  bool
	}{
		{"8.0", upTo90, true},
		{"8.9", []string{"sm_80", "sm_86"}, true},               // a cubin runs on later minors of its major
		{"7.5", []string{"sm_80", "sm_90"}, false},              // but not on older GPUs
		{"10.0", upTo90, false},                                 // Blackwell against a build without it
		{"10.0", append(upTo90, "compute_90"), true},            // PTX is compiled by the driver
		{"10.0", []string{"sm_90", "sm_100", "sm_120"}, true},   // torch built for CUDA 12.8
		{"12.0", []string{"sm_100"}, false},                     // another major needs its own cubin
		{"9.0", []string{"sm_90a"}, true},                       // architecture-specific: only its own
		{"10.0", []string{"sm_90a", "compute_100"}, true},       //
		{"10.3", []string{"sm_100a"}, false},                    //
		{"10.3", []string{"sm_100f"}, true},                     // family-specific: later minors too
		{"8.0", nil, false},                                     // no CUDA kernels at all
		{"", upTo90, true},                                      // unknown capability: nothing to judge by
		{"8.0", []string{"gfx90a", "sm_x", "compute_8"}, false}, // entries that are no NVIDIA arch
	}
	for _, tc := range cases {
		if got := archSupported(tc.cc, tc.archs); got != tc.want {
			t.Errorf("archSupported(%q, %v) = %v, want %v", tc.cc, tc.archs, got, tc.want)
		}
	}
}
