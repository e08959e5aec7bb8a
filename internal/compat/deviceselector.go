package compat

import (
	"fmt"
	"strconv"
	"strings"

	resourceapi "k8s.io/api/resource/v1"

	"github.com/trainenv/trainenv/internal/cuda"
)

// attrs is how a selector names the driver's attributes.
var attrs = `device.attributes[` + strconv.Quote(DRADriverName) + `]`

// DeviceSelectors compiles an image's CUDA requirement into CEL device selectors for a
// ResourceClaim (all of them must hold): a device is selected exactly when the
// requirements hold for the facts ReadDevice reads from it, and its product is one of
// products when given. One selector per NVIDIA_REQUIRE_* variable (ANDed by the
// scheduler), its alternatives joined by ||, each alternative's constraints by &&; versions
// compare with semver's compareTo, brands case-insensitively, products by the name GPU
// Feature Discovery labels nodes with. Every attribute is tested for presence before it is
// read, so that a device without the fact does not match, as a node without the label,
// instead of failing the selector (the scheduler reports a CEL runtime error for the whole
// claim). Its type is not tested: CEL's cost estimate of type() is unbounded, which the API
// server refuses; the driver publishes each attribute with one type (draattrs.go), and a
// device that publishes one with another type fails the claim's scheduling with a CEL
// runtime error that names the device.
func DeviceSelectors(rs cuda.Requirements, products []string) ([]string, error) {
	var out []string
	for _, req := range rs.All {
		s, err := requirementSelector(req)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if len(products) > 0 {
		quoted := make([]string, len(products))
		for i, p := range products {
			quoted[i] = strconv.Quote(p)
		}
		out = append(out, fmt.Sprintf(`%s && %s.%s.replace(" ", "-") in [%s]`,
			guard(AttrProductName), attrs, AttrProductName, strings.Join(quoted, ", ")))
	}
	if len(out) > resourceapi.DeviceSelectorsMaxSize {
		return nil, fmt.Errorf("the CUDA requirement %s needs %d device selectors (at most %d)", rs, len(out), resourceapi.DeviceSelectorsMaxSize)
	}
	for _, s := range out {
		if len(s) > resourceapi.CELSelectorExpressionMaxLength {
			return nil, fmt.Errorf("the CUDA requirement %s compiles to a CEL selector of %d bytes (at most %d); simplify it with spec.cuda.require",
				rs, len(s), resourceapi.CELSelectorExpressionMaxLength)
		}
	}
	return out, nil
}

// requirementSelector ORs the alternatives of one variable. Alternatives that differ only
// in one brand= term (CUDA images list a driver range per brand) share one term with the
// brands in a list, which keeps real images' selectors short.
func requirementSelector(req cuda.Requirement) (string, error) {
	type group struct {
		rest   cuda.Alternative
		brands []string
	}
	var groups []*group
	byRest := map[string]*group{}
	for _, alt := range req {
		brand, rest, ok := splitBrand(alt)
		if !ok {
			groups = append(groups, &group{rest: alt})
			continue
		}
		key := cuda.Requirement{rest}.String()
		if g, seen := byRest[key]; seen {
			g.brands = append(g.brands, brand)
			continue
		}
		g := &group{rest: rest, brands: []string{brand}}
		byRest[key] = g
		groups = append(groups, g)
	}
	terms := make([]string, 0, len(groups))
	for _, g := range groups {
		t, err := alternativeTerm(g.rest, g.brands)
		if err != nil {
			return "", err
		}
		terms = append(terms, t)
	}
	if len(terms) == 1 {
		return terms[0], nil
	}
	return "(" + strings.Join(terms, ") || (") + ")", nil
}

// splitBrand finds the one brand= constraint of alt.
func splitBrand(alt cuda.Alternative) (string, cuda.Alternative, bool) {
	at := -1
	for i, c := range alt {
		if c.Property == cuda.PropBrand && c.Op == "=" {
			if at >= 0 {
				return "", nil, false
			}
			at = i
		}
	}
	if at < 0 {
		return "", nil, false
	}
	rest := append(append(cuda.Alternative{}, alt[:at]...), alt[at+1:]...)
	return alt[at].Value, rest, true
}

// alternativeTerm ANDs the constraints of one alternative, and brand in brands when given.
// The attributes it reads are guarded once, first.
func alternativeTerm(alt cuda.Alternative, brands []string) (string, error) {
	var guards, parts []string
	guarded := map[string]bool{}
	need := func(attr string) {
		if !guarded[attr] {
			guarded[attr] = true
			guards = append(guards, guard(attr))
		}
	}
	if len(brands) > 0 {
		need(AttrBrand)
		quoted := make([]string, len(brands))
		for i, b := range brands {
			q, err := brandLiteral(b)
			if err != nil {
				return "", err
			}
			quoted[i] = q
		}
		parts = append(parts, fmt.Sprintf("%s.%s.lowerAscii() in [%s]", attrs, AttrBrand, strings.Join(quoted, ", ")))
	}
	for _, c := range alt {
		if c.Property == cuda.PropBrand {
			need(AttrBrand)
			q, err := brandLiteral(c.Value)
			if err != nil {
				return "", err
			}
			op := "=="
			if c.Op == "!=" {
				op = "!="
			}
			parts = append(parts, fmt.Sprintf("%s.%s.lowerAscii() %s %s", attrs, AttrBrand, op, q))
			continue
		}
		attr, ok := versionAttrs[c.Property]
		if !ok {
			return "", fmt.Errorf("constraint %s: no device attribute holds %q", c, c.Property)
		}
		need(attr)
		p, err := versionTerm(attr, c)
		if err != nil {
			return "", err
		}
		parts = append(parts, p)
	}
	return strings.Join(append(guards, parts...), " && "), nil
}

// guard is true when the driver publishes attr.
func guard(attr string) string {
	return fmt.Sprintf("has(%s.%s)", attrs, attr)
}

// brandLiteral is the brand in lower case as a CEL string. Brands are compared with
// lowerAscii(), which agrees with case-insensitive comparison for ASCII only.
func brandLiteral(b string) (string, error) {
	for i := 0; i < len(b); i++ {
		if b[i] >= 0x80 {
			return "", fmt.Errorf("brand %q: only ASCII brands can be compared on devices", b)
		}
	}
	return strconv.Quote(strings.ToLower(b)), nil
}

// versionTerm compares a version attribute with the constraint's value. A semver has three
// numbers: a value with more (470.57.02.1) is compared through its floor, as node labels
// with fewer components are (floorOps).
func versionTerm(attr string, c cuda.Constraint) (string, error) {
	want, err := cuda.ParseVersion(c.Value)
	if err != nil {
		return "", err
	}
	floor, exact := componentFloor(want, 3)
	literal := fmt.Sprintf(`%s.%s.compareTo(semver("%d.%d.%d"))`, attrs, attr, floor[0], floor[1], floor[2])
	var terms []string
	for _, op := range floorOps(c.Op, exact) {
		cop := string(op)
		if op == "=" {
			cop = "=="
		}
		terms = append(terms, fmt.Sprintf("%s %s 0", literal, cop))
	}
	switch len(terms) {
	case 0:
		return "false", nil
	case 1:
		return terms[0], nil
	}
	return "(" + strings.Join(terms, " || ") + ")", nil
}
