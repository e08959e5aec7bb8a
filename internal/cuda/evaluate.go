package cuda

import (
	"fmt"
	"strings"
)

// Node is what a node offers, as far as known. Zero values mean unknown, and a constraint
// on an unknown fact does not hold: trainenv never places a workload on a guess.
type Node struct {
	// CUDA is the highest CUDA version the driver supports (e.g. 12.2).
	CUDA Version
	// Driver is the driver version (e.g. 535.104.05).
	Driver Version
	// Arch is the GPUs' compute capability (e.g. 8.0).
	Arch Version
	// Brand is the GPUs' brand, any case (e.g. Tesla).
	Brand string
}

// Holds reports whether the requirement holds on node: some alternative has all its
// constraints hold. A nil requirement always holds.
func (r Requirement) Holds(node Node) bool {
	if len(r) == 0 {
		return true
	}
	for _, alt := range r {
		if alt.holds(node) {
			return true
		}
	}
	return false
}

func (a Alternative) holds(node Node) bool {
	for _, c := range a {
		if !c.holds(node) {
			return false
		}
	}
	return true
}

func (c Constraint) holds(node Node) bool {
	if c.Property == PropBrand {
		if node.Brand == "" {
			return false
		}
		return compare(c.Op, boolCmp(strings.EqualFold(node.Brand, c.Value)))
	}
	have := map[Property]Version{PropCUDA: node.CUDA, PropDriver: node.Driver, PropArch: node.Arch}[c.Property]
	if len(have) == 0 {
		return false
	}
	want, err := parseVersion(c.Value)
	if err != nil {
		return false
	}
	return compare(c.Op, have.Compare(want))
}

// boolCmp maps equality onto Compare's result, so = and != share compare().
func boolCmp(equal bool) int {
	if equal {
		return 0
	}
	return 1
}

// Requirements is every NVIDIA_REQUIRE_* variable of an image: all must hold.
type Requirements struct {
	// All are the requirements, one per variable.
	All []Requirement
	// Source says where the requirements came from, for messages.
	Source string
}

// Holds reports whether every requirement holds on node.
func (rs Requirements) Holds(node Node) bool {
	for _, r := range rs.All {
		if !r.Holds(node) {
			return false
		}
	}
	return true
}

// String renders the requirements, for messages.
func (rs Requirements) String() string {
	parts := make([]string, len(rs.All))
	for i, r := range rs.All {
		parts[i] = fmt.Sprintf("%q", r.String())
	}
	return strings.Join(parts, " and ")
}

// Brief renders the requirements for a message. Real CUDA images list dozens of
// brand/driver alternatives; the first one (the CUDA version) says what matters, and the
// count says the rest exist.
func (rs Requirements) Brief() string {
	if len(rs.All) == 0 {
		return "no CUDA requirement"
	}
	parts := make([]string, len(rs.All))
	for i, req := range rs.All {
		if len(req) <= 3 {
			parts[i] = fmt.Sprintf("%q", req.String())
			continue
		}
		parts[i] = fmt.Sprintf("%q (or one of %d other driver/brand alternatives)", Requirement{req[0]}.String(), len(req)-1)
	}
	return strings.Join(parts, " and ")
}
