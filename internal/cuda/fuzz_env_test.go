package cuda_test

import (
	"testing"

	"github.com/trainenv/trainenv/internal/cuda"
)

// FuzzImageEnv: an image's environment is outside input (anyone can push an image). Reading
// its CUDA requirement and TORCH_CUDA_ARCH_LIST must not panic, and what trainenv derives
// from TORCH_CUDA_ARCH_LIST must be a requirement its own parser accepts.
func FuzzImageEnv(f *testing.F) {
	for _, seed := range [][2]string{
		{"cuda>=12.4 brand=tesla,driver>=470,driver<471", "8.0 8.6 9.0+PTX"},
		{"", "7.5;8.0;8.6"}, {"cuda>=13", "10.0a 12.0+PTX"}, {"x", "Turing Ampere"}, {"", "99999999999999999999.0"},
		{"", "+PTX"}, {"", "8."}, {"", ".8"}, {"", "8.0a+PTX"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, require, archList string) {
		env := []string{"NVIDIA_REQUIRE_CUDA=" + require, "TORCH_CUDA_ARCH_LIST=" + archList, "CUDA_VERSION=12.4.1"}
		_ = cuda.ImageRequirementValues(env)
		_, _ = cuda.FromImageEnv(env)
		if arch, ok := cuda.TorchArchRequirement(env); ok {
			if _, err := cuda.Parse(arch); err != nil {
				t.Fatalf("TORCH_CUDA_ARCH_LIST=%q gives %q, which does not parse: %v", archList, arch, err)
			}
		}
	})
}
