package compat

import (
	"math"
	"slices"
	"strconv"

	"github.com/trainenv/trainenv/internal/cuda"
	"github.com/trainenv/trainenv/internal/gpufacts"
)

// scheme is one way a node's GPU facts are labelled: trainenv's agent (single integers),
// GPU Feature Discovery's current names, or its deprecated names (version components). The
// same schemes serve reading a node's facts and writing node affinity, so the verdict and
// the scheduler can never disagree about a node.
type scheme struct {
	name string
	// versions maps a versioned property to its labels.
	versions map[cuda.Property]versionLabels
	// brand is the label of the GPU brand (lower case), if the scheme has one.
	brand string
}

// versionLabels is either one integer label (encoded with weights) or component labels.
type versionLabels struct {
	// integer is a label holding the version as sum(component[i]*weights[i]).
	integer string
	weights []uint64
	// components are labels of major, minor[, revision].
	components []string
}

var schemes = []scheme{
	{
		name: "trainenv",
		versions: map[cuda.Property]versionLabels{
			cuda.PropCUDA:   {integer: gpufacts.LabelCUDAInt, weights: []uint64{1000, 10}},
			cuda.PropDriver: {integer: gpufacts.LabelDriverInt, weights: []uint64{1_000_000, 1000, 1}},
			cuda.PropArch:   {integer: gpufacts.LabelComputeInt, weights: []uint64{10, 1}},
		},
		brand: gpufacts.LabelBrand,
	},
	{
		name: "gfd",
		versions: map[cuda.Property]versionLabels{
			cuda.PropCUDA:   {components: []string{gpufacts.LabelCUDAMajor, gpufacts.LabelCUDAMinor}},
			cuda.PropDriver: {components: []string{gpufacts.LabelDriverMajor, gpufacts.LabelDriverMinor, gpufacts.LabelDriverRevision}},
			cuda.PropArch:   {components: []string{gpufacts.LabelComputeMajor, gpufacts.LabelComputeMinor}},
		},
	},
	{
		name: "gfd-deprecated",
		versions: map[cuda.Property]versionLabels{
			cuda.PropCUDA:   {components: []string{gpufacts.LabelDeprecatedCUDAMajor, gpufacts.LabelDeprecatedCUDAMinor}},
			cuda.PropDriver: {components: []string{gpufacts.LabelDeprecatedDriverMajor, gpufacts.LabelDeprecatedDriverMinor, gpufacts.LabelDeprecatedDriverRevision}},
			cuda.PropArch:   {components: []string{gpufacts.LabelComputeMajor, gpufacts.LabelComputeMinor}},
		},
	},
}

// read returns the version the labels hold, or nil unless all of the scheme's labels for
// it are present and numeric (what the affinity terms of the scheme also require).
func (vl versionLabels) read(labels map[string]string) cuda.Version {
	if vl.integer != "" {
		n, ok := labelNumber(labels[vl.integer])
		if !ok {
			return nil
		}
		v := make(cuda.Version, len(vl.weights))
		for i, w := range vl.weights {
			v[i] = n / w
			n %= w
		}
		if n > 0 {
			// Below the encoding's last unit (12045 for CUDA: 12.4 and 5): kept as one more
			// component, so the version compares as the affinity compares the integer.
			v = append(v, n)
		}
		return v
	}
	v := make(cuda.Version, len(vl.components))
	for i, key := range vl.components {
		n, ok := labelNumber(labels[key])
		if !ok {
			return nil
		}
		v[i] = n
	}
	return v
}

// integerFloor returns the integer of the highest version the label can hold that is at
// most want, and whether that version is want. Summing want's components with the weights
// is not enough: a component too large for its weight carries into the one before (cuda
// 12.100 would be 13000, which is 13.0, above 12.100 as versions compare), and components
// past the encoding's last unit would be dropped (470.57.02.1 would be 470.57.02).
func (vl versionLabels) integerFloor(want cuda.Version) (int64, bool) {
	weights := vl.weights
	if last := weights[len(weights)-1]; last > 1 {
		// read keeps what lies below the last weight as one more component (12045 is
		// 12.4.5), so that sub-unit is a component here too.
		weights = append(slices.Clone(weights), 1)
	}
	var n uint64
	for i, w := range weights {
		c := want.At(i)
		if i > 0 && c >= weights[i-1]/w {
			// Above every version with want's components before i, below the next one:
			// 12.99.9 (12999) < 12.100 < 13.0 (13000).
			return int64(n + weights[i-1] - 1), false
		}
		n += c * w
	}
	return int64(n), !hasNonZero(want, len(weights))
}

// componentFloor cuts want to the k component labels; the cut version is want itself
// unless a component past them is non-zero (12.9.5 lies between 12.9 and 12.10).
func componentFloor(want cuda.Version, k int) (cuda.Version, bool) {
	floor := make(cuda.Version, k)
	for i := range floor {
		floor[i] = want.At(i)
	}
	return floor, !hasNonZero(want, k)
}

func hasNonZero(v cuda.Version, from int) bool {
	for i := from; i < len(v); i++ {
		if v[i] != 0 {
			return true
		}
	}
	return false
}

// labelNumber reads a label value as the scheduler reads it for the Gt and Lt operators
// (a signed 64-bit integer), so that a value it cannot compare, such as one above 2^63-1,
// is unknown here too and the verdict never admits a node the affinity does not.
func labelNumber(value string) (uint64, bool) {
	n, err := strconv.ParseInt(value, 10, 64)
	if err != nil || n < 0 || n >= maxLabelNumber {
		return 0, false
	}
	return uint64(n), true
}

// maxLabelNumber bounds the numbers read from labels (exclusive), so that the affinity can
// require "a number" as Lt maxLabelNumber (see numeric).
const maxLabelNumber = math.MaxInt64

// facts reads the node facts that this scheme labels (nil/empty where it has none).
func (s scheme) facts(labels map[string]string) cuda.Node {
	n := cuda.Node{
		CUDA:   s.versions[cuda.PropCUDA].read(labels),
		Driver: s.versions[cuda.PropDriver].read(labels),
		Arch:   s.versions[cuda.PropArch].read(labels),
	}
	if s.brand != "" {
		n.Brand = labels[s.brand]
	}
	return n
}

// holds reports whether the requirements hold on a node under some scheme: exactly the
// nodes that the affinity terms of all schemes together admit.
func holds(rs cuda.Requirements, facts []cuda.Node) bool {
	for _, f := range facts {
		if rs.Holds(f) {
			return true
		}
	}
	return false
}

// bestFacts reads each fact from the first scheme that has it, for messages.
func bestFacts(facts []cuda.Node) cuda.Node {
	var n cuda.Node
	for _, f := range facts {
		if n.CUDA == nil {
			n.CUDA = f.CUDA
		}
		if n.Driver == nil {
			n.Driver = f.Driver
		}
		if n.Arch == nil {
			n.Arch = f.Arch
		}
		if n.Brand == "" {
			n.Brand = f.Brand
		}
	}
	return n
}
