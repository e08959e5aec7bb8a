package cuda

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// envTorchArchList names the compute capabilities an image's PyTorch (and its extensions)
// was built for, as PyTorch's builds read it: "8.0 8.6 9.0+PTX" or "8.0;8.6;9.0+PTX".
// NVIDIA's and PyTorch's CUDA images set it to what their torch carries.
const envTorchArchList = "TORCH_CUDA_ARCH_LIST"

// maxArch stands for "no upper bound" in an arch range (compute capabilities are < 100).
var maxArch = Version{1000}

// archRange is the compute capabilities [from, to) one arch list entry runs on.
type archRange struct{ from, to Version }

// TorchArchRequirement turns an image's TORCH_CUDA_ARCH_LIST into a requirement on the
// GPU's compute capability (arch terms), so that a node whose GPUs torch has no kernels for
// (a B200, compute capability 10.0, for a torch built up to 9.0) is not chosen. Per NVIDIA's
// rules a cubin for X.Y runs on X.Y up to the next major, an architecture-specific one
// (X.Ya) on X.Y only, and PTX (+PTX) on every later GPU. Overlapping and adjacent ranges
// are merged, so real lists come out as one or two alternatives ("arch>=5.0" for a list
// ending in +PTX). ok is false when the image sets no list, or one with an entry this does
// not read (named architectures): no requirement then, and the preflight's own torch check
// still finds a missing kernel on the node.
func TorchArchRequirement(env []string) (requirement string, ok bool) {
	var list string
	for _, kv := range env {
		if v, found := strings.CutPrefix(kv, envTorchArchList+"="); found {
			list = v
		}
	}
	fields := strings.FieldsFunc(list, func(r rune) bool { return r == ' ' || r == ';' || r == ',' })
	if len(fields) == 0 {
		return "", false
	}
	ranges := make([]archRange, 0, len(fields))
	for _, f := range fields {
		r, err := parseArchEntry(f)
		if err != nil {
			return "", false
		}
		ranges = append(ranges, r)
	}
	var alts []string
	for _, r := range mergeRanges(ranges) {
		alt := "arch>=" + r.from.String()
		if r.to.Compare(maxArch) != 0 {
			alt += ",arch<" + r.to.String()
		}
		alts = append(alts, alt)
	}
	return strings.Join(alts, " "), true
}

func parseArchEntry(entry string) (archRange, error) {
	v, ptx := strings.CutSuffix(entry, "+PTX")
	kind := ""
	if strings.HasSuffix(v, "a") || strings.HasSuffix(v, "f") {
		v, kind = v[:len(v)-1], v[len(v)-1:]
	}
	major, minor, ok := strings.Cut(v, ".")
	ma, err1 := strconv.ParseUint(major, 10, 8)
	mi, err2 := strconv.ParseUint(minor, 10, 8)
	if !ok || err1 != nil || err2 != nil || mi > 9 {
		return archRange{}, fmt.Errorf("arch list entry %q is not MAJOR.MINOR[a|f][+PTX]", entry)
	}
	r := archRange{from: Version{ma, mi}, to: Version{ma + 1, 0}}
	switch {
	case ptx:
		r.to = maxArch
	case kind == "a":
		r.to = Version{ma, mi + 1}
	}
	return r, nil
}

func mergeRanges(rs []archRange) []archRange {
	slices.SortFunc(rs, func(a, b archRange) int { return a.from.Compare(b.from) })
	out := []archRange{rs[0]}
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if r.from.Compare(last.to) <= 0 {
			if r.to.Compare(last.to) > 0 {
				last.to = r.to
			}
			continue
		}
		out = append(out, r)
	}
	return out
}
