package preflight

import (
	"strconv"
	"strings"
)

// archSupported reports whether a torch build whose compiled architectures are archs
// (torch.cuda.get_arch_list(): "sm_80", "sm_90a", "compute_90") has kernels for a GPU of
// compute capability cc ("8.6"). Per NVIDIA's compatibility rules: a cubin for sm_XY runs
// on GPUs of major X with minor at least Y (sm_80 on 8.6); an architecture-specific cubin
// (sm_90a) only on exactly its own; PTX (compute_XY) is compiled by the driver for any GPU
// of at least XY. A build without kernels for the GPU imports fine and reports CUDA as
// available, then fails at the first kernel with "no kernel image is available".
func archSupported(cc string, archs []string) bool {
	major, minor, ok := parseCC(cc)
	if !ok {
		return true // nothing to judge by
	}
	for _, a := range archs {
		kind, num, ok := strings.Cut(a, "_")
		if !ok {
			continue
		}
		specific := strings.HasSuffix(num, "a")
		num = strings.TrimRight(num, "af")
		n, err := strconv.Atoi(num)
		if err != nil || n < 10 {
			continue
		}
		aMajor, aMinor := n/10, n%10
		switch {
		case kind == "compute" && (aMajor < major || (aMajor == major && aMinor <= minor)):
			return true
		case kind == "sm" && specific && aMajor == major && aMinor == minor:
			return true
		case kind == "sm" && !specific && aMajor == major && aMinor <= minor:
			return true
		}
	}
	return false
}

func parseCC(cc string) (int, int, bool) {
	a, b, ok := strings.Cut(cc, ".")
	major, err1 := strconv.Atoi(a)
	minor, err2 := strconv.Atoi(b)
	return major, minor, ok && err1 == nil && err2 == nil
}
