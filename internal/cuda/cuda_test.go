package cuda_test

import (
	"strings"
	"testing"

	"github.com/trainenv/trainenv/internal/cuda"
)

func v(s string) cuda.Version {
	ver, err := cuda.ParseVersion(s)
	if err != nil {
		panic(err)
	}
	return ver
}

var (
	driver535 = cuda.Node{CUDA: v("12.2"), Driver: v("535.104.05"), Arch: v("8.0"), Brand: "Tesla"}
	driver470 = cuda.Node{CUDA: v("11.4"), Driver: v("470.82.01"), Arch: v("7.5"), Brand: "Tesla"}
	driver580 = cuda.Node{CUDA: v("13.0"), Driver: v("580.65.06"), Arch: v("9.0"), Brand: "NVIDIA"}
	geforce   = cuda.Node{CUDA: v("12.2"), Driver: v("535.104.05"), Arch: v("8.6"), Brand: "GeForce"}
	blackwell = cuda.Node{CUDA: v("13.0"), Driver: v("580.65.06"), Arch: v("10.0"), Brand: "NVIDIA"}
	unknown   = cuda.Node{}
)

// The NVIDIA_REQUIRE_CUDA of nvidia/cuda:12.4.1-base-ubuntu22.04, as published.
const cuda124Image = "cuda>=12.4 brand=tesla,driver>=470,driver<471 brand=unknown,driver>=470,driver<471 " +
	"brand=nvidia,driver>=470,driver<471 brand=nvidiartx,driver>=470,driver<471 brand=geforce,driver>=470,driver<471 " +
	"brand=tesla,driver>=525,driver<526 brand=tesla,driver>=535,driver<536"

func TestRequirementHolds(t *testing.T) {
	cases := []struct {
		name string
		req  string
		node cuda.Node
		want bool
	}{
		{"12.2 image on 535 (12.2)", "cuda>=12.2", driver535, true},
		{"12.4 image on 535 (12.2) fails by default", "cuda>=12.4", driver535, false},
		{"12.8 image on 535 (12.2)", "cuda>=12.8", driver535, false},
		{"12.1 image on 470 (11.4)", "cuda>=12.1", driver470, false},
		{"13.0 image on 580 (13.0)", "cuda>=13.0", driver580, true},
		{"real 12.4 image on 535 tesla: brand alternative holds", cuda124Image, driver535, true},
		{"real 12.4 image on 535 geforce: no alternative", cuda124Image, geforce, false},
		{"real 12.4 image on 470 tesla: forward-compat alternative", cuda124Image, driver470, true},
		{"driver<471 holds for 470.82.01", "driver<471", driver470, true},
		{"driver>=470 holds for 470.82.01", "driver>=470", driver470, true},
		{"driver=470 does not hold for 470.82.01", "driver=470", driver470, false},
		{"driver=470.82.01 holds", "driver=470.82.01", driver470, true},
		{"brand is case-insensitive", "brand=TESLA", driver535, true},
		{"brand !=", "brand!=geforce", driver535, true},
		{"arch >= holds", "arch>=8.0", driver535, true},
		{"arch < fails", "arch<8.0", driver535, false},
		{"comma is AND", "cuda>=12.0,driver>=536", driver535, false},
		{"space is OR", "cuda>=13.0 driver>=535", driver535, true},
		{"doubled separators are skipped", "  cuda>=12.0,,driver>=535  ", driver535, true},
		{"unknown facts never hold", "cuda>=11.0", unknown, false},
		{"unknown brand never holds", "brand!=geforce", unknown, false},
		{"empty requirement holds", "", unknown, true},
		{"greater than", "cuda>12.2", driver535, false},
		{"less or equal", "cuda<=12.2", driver535, true},
		{"not equal version", "cuda!=12.2", driver535, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := cuda.Parse(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := req.Holds(tc.node); got != tc.want {
				t.Fatalf("%q on %+v = %v, want %v", tc.req, tc.node, got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := map[string]string{
		"cuda12.4":       "no operator",
		"gpu>=1":         `unknown property "gpu"`,
		"brand>=tesla":   "brand allows only = and !=",
		"cuda>=":         "no value",
		"cuda>=12.x":     "not dotted numbers",
		"driver>=535..1": "empty component",
		"=12":            "unknown property",
		"cuda>=99999999": "not dotted numbers",
	}
	for in, want := range cases {
		_, err := cuda.Parse(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) error = %v, want it to mention %q", in, err, want)
		}
	}
}

func TestFromImageEnv(t *testing.T) {
	cases := []struct {
		name    string
		env     []string
		node    cuda.Node
		want    bool
		numVars int
	}{
		{"NVIDIA_REQUIRE_CUDA", []string{"NVIDIA_REQUIRE_CUDA=cuda>=12.4"}, driver535, false, 1},
		{"legacy CUDA_VERSION becomes cuda>=major.minor", []string{"CUDA_VERSION=12.2.2"}, driver535, true, 1},
		{"legacy CUDA_VERSION too new", []string{"CUDA_VERSION=12.4.1"}, driver535, false, 1},
		{"NVIDIA_REQUIRE_CUDA wins over CUDA_VERSION", []string{"CUDA_VERSION=12.4.1", "NVIDIA_REQUIRE_CUDA=cuda>=12.0"}, driver535, true, 1},
		{"several variables are ANDed", []string{"NVIDIA_REQUIRE_CUDA=cuda>=12.0", "NVIDIA_REQUIRE_ARCH=arch>=9.0"}, driver535, false, 2},
		{"NVIDIA_DISABLE_REQUIRE", []string{"NVIDIA_REQUIRE_CUDA=cuda>=13.0", "NVIDIA_DISABLE_REQUIRE=true"}, driver470, true, 0},
		{"NVIDIA_DISABLE_REQUIRE=false is not disabling", []string{"NVIDIA_REQUIRE_CUDA=cuda>=13.0", "NVIDIA_DISABLE_REQUIRE=false"}, driver470, false, 1},
		{"jetpack requirement ignored on discrete GPUs", []string{"NVIDIA_REQUIRE_JETPACK=csv-mounts=all"}, driver470, true, 0},
		{"no requirement", []string{"PATH=/usr/bin"}, unknown, true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := cuda.FromImageEnv(tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs.All) != tc.numVars {
				t.Fatalf("got %d requirement variables (%s), want %d", len(rs.All), rs, tc.numVars)
			}
			if got := rs.Holds(tc.node); got != tc.want {
				t.Fatalf("Holds = %v, want %v (%s)", got, tc.want, rs)
			}
		})
	}
	if _, err := cuda.FromImageEnv([]string{"NVIDIA_REQUIRE_CUDA=cuda>>12"}); err == nil || !strings.Contains(err.Error(), "NVIDIA_REQUIRE_CUDA") {
		t.Fatal("a malformed image requirement must be an error")
	}
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{cuda124Image, "cuda>=12.4", "brand=tesla,driver>=470,driver<471", "", ",, ,", "arch>=8.0", "x=y", "driver<=1.2.3.4.5"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		req, err := cuda.Parse(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		for _, node := range []cuda.Node{driver535, driver470, unknown, blackwell} {
			req.Holds(node)
		}
		// What parses renders back to an equivalent requirement.
		again, err := cuda.Parse(req.String())
		if err != nil || again.String() != req.String() {
			t.Fatalf("round trip of %q: %q, %v", s, again, err)
		}
	})
}
