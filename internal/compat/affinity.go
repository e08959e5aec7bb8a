package compat

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/trainenv/trainenv/internal/cuda"
	"github.com/trainenv/trainenv/internal/gpufacts"
)

// maxTerms bounds the node selector terms one requirement may expand to.
const maxTerms = 128

// term is the requirements of one node selector term (ANDed).
type term []corev1.NodeSelectorRequirement

// Affinity returns node selector terms (ORed) for a GPU environment that admit exactly the
// nodes on which rs holds, under any labelling scheme, restricted to products when given,
// and never a node whose agent reports an unhealthy GPU.
func Affinity(rs cuda.Requirements, products []string) ([]corev1.NodeSelectorTerm, error) {
	var terms []term
	if len(rs.All) > 0 {
		for _, s := range schemes {
			st, err := s.requirementsTerms(rs)
			if err != nil {
				return nil, err
			}
			terms = append(terms, st...)
		}
		if len(terms) == 0 {
			return nil, fmt.Errorf("the CUDA requirement %s cannot be expressed with any node labels", rs)
		}
	} else {
		terms = []term{{}}
	}
	if len(terms) > maxTerms {
		return nil, fmt.Errorf("the CUDA requirement %s expands to %d node selector terms (at most %d); simplify it with spec.cuda.require", rs, len(terms), maxTerms)
	}
	out := make([]corev1.NodeSelectorTerm, 0, len(terms))
	for _, t := range terms {
		if len(products) > 0 {
			t = append(t, corev1.NodeSelectorRequirement{Key: LabelGPUProduct, Operator: corev1.NodeSelectorOpIn, Values: products})
		}
		// NotIn also admits nodes without the label (GFD-only clusters have no health label).
		t = append(t, corev1.NodeSelectorRequirement{Key: gpufacts.LabelHealthy, Operator: corev1.NodeSelectorOpNotIn, Values: []string{"false"}})
		out = append(out, corev1.NodeSelectorTerm{MatchExpressions: t})
	}
	return out, nil
}

// requirementsTerms is the DNF of all variables (ANDed) in this scheme.
func (s scheme) requirementsTerms(rs cuda.Requirements) ([]term, error) {
	acc := []term{{}}
	for _, req := range rs.All {
		var alts []term
		for _, alt := range req {
			at := []term{{}}
			for _, c := range alt {
				ct, err := s.constraintTerms(c)
				if err != nil {
					return nil, err
				}
				at = cross(at, ct)
			}
			alts = append(alts, at...)
		}
		acc = cross(acc, alts)
		if len(acc) > maxTerms {
			return nil, fmt.Errorf("the CUDA requirement %s expands to more than %d node selector terms; simplify it with spec.cuda.require", rs, maxTerms)
		}
	}
	return acc, nil
}

// constraintTerms expresses one constraint in this scheme; none if it cannot.
func (s scheme) constraintTerms(c cuda.Constraint) ([]term, error) {
	if c.Property == cuda.PropBrand {
		if s.brand == "" {
			return nil, nil
		}
		value := strings.ToLower(c.Value)
		if errs := validation.IsValidLabelValue(value); len(errs) > 0 {
			return nil, fmt.Errorf("brand %q: %s", c.Value, strings.Join(errs, "; "))
		}
		if c.Op == "=" {
			return []term{{{Key: s.brand, Operator: corev1.NodeSelectorOpIn, Values: []string{value}}}}, nil
		}
		return []term{{exists(s.brand), {Key: s.brand, Operator: corev1.NodeSelectorOpNotIn, Values: []string{value}}}}, nil
	}
	want, err := cuda.ParseVersion(c.Value)
	if err != nil {
		return nil, err
	}
	vl := s.versions[c.Property]
	var out []term
	if vl.integer != "" {
		n, exact := vl.integerFloor(want)
		for _, op := range floorOps(c.Op, exact) {
			out = append(out, integerTerms(vl.integer, n, op)...)
		}
		return out, nil
	}
	floor, exact := componentFloor(want, len(vl.components))
	for _, op := range floorOps(c.Op, exact) {
		out = append(out, componentTerms(vl.components, floor, op)...)
	}
	return out, nil
}

// floorOps rewrites a comparison with want as comparisons with its floor (the highest
// version the labels can hold at or below want). When the floor is want itself, nothing
// changes; when want lies strictly between the floor and the next version the labels can
// hold (cuda 12.100, 12.9.5), no node equals want, a node is above want exactly when it is
// above the floor, and below want exactly when it is at or below the floor.
func floorOps(op cuda.Op, exact bool) []cuda.Op {
	if exact {
		return []cuda.Op{op}
	}
	switch op {
	case ">", ">=":
		return []cuda.Op{">"}
	case "<", "<=":
		return []cuda.Op{"<="}
	case "!=":
		return []cuda.Op{"<=", ">"}
	default: // "=": no node
		return nil
	}
}

// integerTerms compares a version's integer encoding n: Gt and Lt compare integers.
func integerTerms(key string, n int64, op cuda.Op) []term {
	itoa := func(n int64) []string { return []string{strconv.FormatInt(n, 10)} }
	switch op {
	case ">=":
		if n == 0 {
			return append(greater(key, 0), equalTo(key, 0))
		}
		return greater(key, n-1)
	case ">":
		return greater(key, n)
	case "<":
		if n == 0 {
			return nil // nothing is below zero
		}
		return []term{{{Key: key, Operator: corev1.NodeSelectorOpLt, Values: itoa(n)}}}
	case "<=":
		return []term{{{Key: key, Operator: corev1.NodeSelectorOpLt, Values: itoa(n + 1)}}}
	case "=":
		return []term{equalTo(key, n)}
	default: // "!=": below or above
		return append(integerTerms(key, n, "<"), integerTerms(key, n, ">")...)
	}
}

func greater(key string, n int64) []term {
	return []term{{{Key: key, Operator: corev1.NodeSelectorOpGt, Values: []string{strconv.FormatInt(n, 10)}}}}
}

// equalTo compares numerically (Gt and Lt), not as strings: GFD writes revisions with
// leading zeros ("05"), which In and NotIn would compare as text.
func equalTo(key string, n int64) term {
	if n == 0 {
		// Label values cannot be negative numbers ("-1"), so 0 is "less than 1".
		return term{{Key: key, Operator: corev1.NodeSelectorOpLt, Values: []string{"1"}}}
	}
	return term{
		{Key: key, Operator: corev1.NodeSelectorOpGt, Values: []string{strconv.FormatInt(n-1, 10)}},
		{Key: key, Operator: corev1.NodeSelectorOpLt, Values: []string{strconv.FormatInt(n+1, 10)}},
	}
}

// componentTerms compares a version held as component labels lexicographically: for
// "greater", some component is greater and all before it are equal.
func componentTerms(keys []string, want cuda.Version, op cuda.Op) []term {
	last := len(keys) - 1
	// prefixEqual(i, r...): components before i equal want's, then r on component i.
	prefixEqual := func(i int, r ...corev1.NodeSelectorRequirement) term {
		t := term{}
		for j := 0; j < i; j++ {
			t = append(t, equalTo(keys[j], int64(want.At(j)))...)
		}
		return withAll(append(t, r...), keys)
	}
	at := func(i int, operator corev1.NodeSelectorOperator, v int64) corev1.NodeSelectorRequirement {
		return corev1.NodeSelectorRequirement{Key: keys[i], Operator: operator, Values: []string{strconv.FormatInt(v, 10)}}
	}
	var out []term
	switch op {
	case "=":
		return []term{prefixEqual(last, equalTo(keys[last], int64(want.At(last)))...)}
	case ">", ">=", "!=":
		for i := 0; i <= last; i++ {
			v := int64(want.At(i))
			switch {
			case i == last && op == ">=" && v == 0:
				out = append(out, prefixEqual(i))
			case i == last && op == ">=":
				out = append(out, prefixEqual(i, at(i, corev1.NodeSelectorOpGt, v-1)))
			default:
				out = append(out, prefixEqual(i, at(i, corev1.NodeSelectorOpGt, v)))
			}
		}
	}
	if op == "<" || op == "<=" || op == "!=" {
		for i := 0; i <= last; i++ {
			v := int64(want.At(i))
			switch {
			case i == last && op == "<=":
				out = append(out, prefixEqual(i, at(i, corev1.NodeSelectorOpLt, v+1)))
			case v == 0:
				// nothing is below zero
			default:
				out = append(out, prefixEqual(i, at(i, corev1.NodeSelectorOpLt, v)))
			}
		}
	}
	return out
}

// withAll requires a number in each of the keys a term does not constrain, so that a node
// must carry the whole version, every component numeric (as reading its facts requires:
// Exists would admit a node whose minor version label is "A").
func withAll(t term, keys []string) term {
	for _, k := range keys {
		found := false
		for _, r := range t {
			if r.Key == k && r.Operator != corev1.NodeSelectorOpNotIn {
				found = true
			}
		}
		if !found {
			t = append(t, numeric(k))
		}
	}
	return t
}

// numeric admits a label holding an integer below maxLabelNumber: Lt parses the value as
// the verdict does (labelNumber), and a value that is not a number fails it. (Gt -1 would
// say it more plainly, but "-1" is not a valid label value.)
func numeric(key string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: key, Operator: corev1.NodeSelectorOpLt, Values: []string{strconv.FormatInt(maxLabelNumber, 10)}}
}

// cross is the AND of two DNFs.
func cross(a, b []term) []term {
	out := make([]term, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			t := append(append(term{}, x...), y...)
			out = append(out, t)
		}
	}
	return out
}

func exists(key string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: key, Operator: corev1.NodeSelectorOpExists}
}
