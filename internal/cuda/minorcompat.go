package cuda

import "fmt"

// MinorVersionDrivers is the minimum Linux driver of each CUDA major release for CUDA
// minor-version compatibility: an application built with any 12.x toolkit runs on any
// driver of at least 525.60.13, with the features of the driver's own CUDA version.
// Source: NVIDIA, "CUDA Compatibility", section "Minor Version Compatibility", table
// "Example CUDA Toolkit and Minimum Required Driver Versions" (Linux x86_64).
var MinorVersionDrivers = map[uint64]string{
	11: "450.80.02",
	12: "525.60.13",
	13: "580.65.06",
}

// WithMinorVersionCompatibility rewrites rs so that a cuda>=X.Y (or cuda>X.Y) constraint
// also holds on a node whose driver supports CUDA X.anything and is at least the minimum
// driver of major X. The rewrite stays in the requirement grammar (the constraint becomes
// an alternative: cuda>=X.0,cuda<X+1,driver>=MIN), so evaluation and node affinity need no
// special case. Majors without a known minimum are left as they are.
func WithMinorVersionCompatibility(rs Requirements) Requirements {
	out := Requirements{Source: rs.Source + ", relaxed by CUDA minor-version compatibility"}
	for _, req := range rs.All {
		var relaxed Requirement
		for _, alt := range req {
			relaxed = append(relaxed, relaxAlternative(alt)...)
		}
		out.All = append(out.All, relaxed)
	}
	return out
}

// relaxAlternative expands one alternative: each relaxable constraint is either kept or
// replaced by its minor-version form, giving up to 2^n alternatives (n is small: images
// declare one cuda constraint per alternative).
func relaxAlternative(alt Alternative) []Alternative {
	out := []Alternative{{}}
	for _, c := range alt {
		options := []Alternative{{c}}
		if relaxed, ok := minorVersionForm(c); ok {
			options = append(options, relaxed)
		}
		var next []Alternative
		for _, prefix := range out {
			for _, opt := range options {
				next = append(next, append(append(Alternative{}, prefix...), opt...))
			}
		}
		out = next
	}
	return out
}

func minorVersionForm(c Constraint) (Alternative, bool) {
	if c.Property != PropCUDA || (c.Op != ">=" && c.Op != ">") {
		return nil, false
	}
	v, err := parseVersion(c.Value)
	if err != nil {
		return nil, false
	}
	minDriver, ok := MinorVersionDrivers[v.At(0)]
	if !ok {
		return nil, false
	}
	return Alternative{
		{Property: PropCUDA, Op: ">=", Value: fmt.Sprintf("%d.0", v.At(0))},
		{Property: PropCUDA, Op: "<", Value: fmt.Sprintf("%d.0", v.At(0)+1)},
		{Property: PropDriver, Op: ">=", Value: minDriver},
	}, true
}
