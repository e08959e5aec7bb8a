package cuda_test

import (
	"testing"

	"github.com/trainenv/trainenv/internal/cuda"
)

func TestTorchArchRequirement(t *testing.T) {
	cases := []struct {
		list string
		want string // "" means no requirement
	}{
		{"", ""},
		{"8.0 8.6 9.0", "arch>=8.0,arch<10.0"},
		{"5.2 6.0 6.1 7.0 7.5 8.0 8.6 9.0+PTX", "arch>=5.2"},                    // an NGC PyTorch image
		{"7.0;7.5;8.0;8.6;9.0;10.0;12.0+PTX", "arch>=7.0,arch<11.0 arch>=12.0"}, // torch for CUDA 12.8: no 11.x kernels
		{"8.0;9.0", "arch>=8.0,arch<10.0"},                                      // 8.x cubins run on 8.6, 8.9
		{"7.0 9.0", "arch>=7.0,arch<8.0 arch>=9.0,arch<10.0"},                   // a gap: no Ampere kernels
		{"9.0a", "arch>=9.0,arch<9.1"},                                          // architecture-specific
		{"8.0 10.0f", "arch>=8.0,arch<9.0 arch>=10.0,arch<11.0"},
		{"Ampere;Hopper", ""}, // named architectures are not read
		{"8.0 sm_90", ""},
	}
	for _, tc := range cases {
		env := []string{"PATH=/usr/bin", "TORCH_CUDA_ARCH_LIST=" + tc.list}
		got, ok := cuda.TorchArchRequirement(env)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("TORCH_CUDA_ARCH_LIST=%q: got %q (ok %v), want %q", tc.list, got, ok, tc.want)
		}
		if ok {
			if _, err := cuda.Parse(got); err != nil {
				t.Errorf("%q does not parse: %v", got, err)
			}
		}
	}
	if _, ok := cuda.TorchArchRequirement([]string{"CUDA_VERSION=12.4.1"}); ok {
		t.Error("no list, no requirement")
	}
}

// Compute capability 10.0 (B200) against an arch list without it, and with PTX that
// covers it.
func TestTorchArchListOnBlackwell(t *testing.T) {
	node := func(cc string) cuda.Node {
		v, _ := cuda.ParseVersion(cc)
		c, _ := cuda.ParseVersion("12.8")
		d, _ := cuda.ParseVersion("570.124.06")
		return cuda.Node{CUDA: c, Driver: d, Arch: v}
	}
	cases := []struct {
		list string
		cc   string
		want bool
	}{
		{"8.0 8.6 9.0", "10.0", false},
		{"8.0 8.6 9.0", "9.0", true},
		{"8.0 8.6 9.0", "8.9", true},
		{"8.0 8.6 9.0", "7.5", false},
		{"8.0 8.6 9.0+PTX", "10.0", true},
		{"8.0 9.0 10.0", "12.0", false},
		{"8.0 9.0 10.0", "10.3", true},
	}
	for _, tc := range cases {
		req, _ := cuda.TorchArchRequirement([]string{"TORCH_CUDA_ARCH_LIST=" + tc.list})
		rs, err := cuda.FromValues([]string{"cuda>=12.4", req}, "test")
		if err != nil {
			t.Fatal(err)
		}
		if got := rs.Holds(node(tc.cc)); got != tc.want {
			t.Errorf("arch list %q on compute capability %s: holds = %v, want %v (%s)", tc.list, tc.cc, got, tc.want, req)
		}
	}
}
