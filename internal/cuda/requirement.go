// Package cuda reads an image's CUDA requirement and evaluates it against a GPU node's
// facts exactly as libnvidia-container does at container start, so that trainenv can
// refuse or place a workload before the runtime would refuse the container.
//
// The grammar (NVIDIA_REQUIRE_* variables of CUDA images):
//
//	requirement = alternative { " " alternative }     // space: OR
//	alternative = constraint { "," constraint }       // comma: AND
//	constraint  = property op value                   // e.g. cuda>=12.4, brand=tesla
//	property    = "cuda" | "driver" | "arch" | "brand"
//	op          = "=" | "!=" | "<" | "<=" | ">" | ">="
//
// Several NVIDIA_REQUIRE_* variables are ANDed. Versions compare as dotted numbers with
// missing components as zero (driver<471 holds for 470.82.01); brand compares
// case-insensitively and allows only = and !=; an unknown property is an error.
package cuda

import (
	"fmt"
	"strings"
)

// Property is what a constraint is about.
type Property string

const (
	// PropCUDA is the highest CUDA version the driver supports.
	PropCUDA Property = "cuda"
	// PropDriver is the driver version.
	PropDriver Property = "driver"
	// PropArch is a GPU's compute capability (e.g. 8.0); evaluated per GPU.
	PropArch Property = "arch"
	// PropBrand is a GPU's brand (tesla, geforce, ...); evaluated per GPU.
	PropBrand Property = "brand"
)

// Op is a comparison operator.
type Op string

// The operators, longest first so that parsing finds "<=" before "<".
var ops = []Op{"!=", "<=", ">=", "=", "<", ">"}

// Constraint is one comparison, e.g. driver>=470.
type Constraint struct {
	Property Property
	Op       Op
	Value    string
}

func (c Constraint) String() string { return string(c.Property) + string(c.Op) + c.Value }

// Alternative is constraints that must all hold.
type Alternative []Constraint

// Requirement is alternatives of which one must hold.
type Requirement []Alternative

func (r Requirement) String() string {
	alts := make([]string, len(r))
	for i, a := range r {
		parts := make([]string, len(a))
		for j, c := range a {
			parts[j] = c.String()
		}
		alts[i] = strings.Join(parts, ",")
	}
	return strings.Join(alts, " ")
}

// Parse parses one NVIDIA_REQUIRE_* value. Empty alternatives and constraints (doubled
// separators) are skipped, as libnvidia-container does; an empty requirement parses to
// nil, which always holds.
func Parse(s string) (Requirement, error) {
	var req Requirement
	for _, altText := range strings.Split(s, " ") {
		var alt Alternative
		for _, text := range strings.Split(altText, ",") {
			if text == "" {
				continue
			}
			c, err := parseConstraint(text)
			if err != nil {
				return nil, err
			}
			alt = append(alt, c)
		}
		if len(alt) > 0 {
			req = append(req, alt)
		}
	}
	return req, nil
}

func parseConstraint(text string) (Constraint, error) {
	for i := 0; i < len(text); i++ {
		for _, op := range ops {
			if !strings.HasPrefix(text[i:], string(op)) {
				continue
			}
			c := Constraint{Property: Property(text[:i]), Op: op, Value: text[i+len(op):]}
			return c, c.validate(text)
		}
	}
	return Constraint{}, fmt.Errorf("constraint %q has no operator (one of = != < <= > >=)", text)
}

func (c Constraint) validate(text string) error {
	if c.Value == "" {
		return fmt.Errorf("constraint %q has no value", text)
	}
	switch c.Property {
	case PropCUDA, PropDriver, PropArch:
		if _, err := parseVersion(c.Value); err != nil {
			return fmt.Errorf("constraint %q: %w", text, err)
		}
	case PropBrand:
		if c.Op != "=" && c.Op != "!=" {
			return fmt.Errorf("constraint %q: brand allows only = and !=", text)
		}
	default:
		return fmt.Errorf("constraint %q: unknown property %q (known: cuda, driver, arch, brand)", text, c.Property)
	}
	return nil
}
