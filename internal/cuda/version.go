package cuda

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a dotted version such as 12.4 or 535.104.05.
type Version []uint64

// maxComponent bounds each component, so that integer encodings cannot overflow.
const maxComponent = 1_000_000

// parseVersion parses dotted decimal numbers ("535.104.05", "12.4", "8.0").
func parseVersion(s string) (Version, error) {
	parts := strings.Split(s, ".")
	v := make(Version, len(parts))
	for i, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("version %q has an empty component", s)
		}
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil || n > maxComponent {
			return nil, fmt.Errorf("version %q is not dotted numbers", s)
		}
		v[i] = n
	}
	return v, nil
}

// ParseVersion parses a dotted version.
func ParseVersion(s string) (Version, error) { return parseVersion(s) }

// Compare returns -1, 0 or 1; a missing component counts as zero.
func (v Version) Compare(o Version) int {
	for i := 0; i < len(v) || i < len(o); i++ {
		a, b := component(v, i), component(o, i)
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
	}
	return 0
}

func component(v Version, i int) uint64 {
	if i < len(v) {
		return v[i]
	}
	return 0
}

// At returns component i (0 if missing).
func (v Version) At(i int) uint64 { return component(v, i) }

func (v Version) String() string {
	parts := make([]string, len(v))
	for i, n := range v {
		parts[i] = strconv.FormatUint(n, 10)
	}
	return strings.Join(parts, ".")
}

func compare(op Op, cmp int) bool {
	switch op {
	case "=":
		return cmp == 0
	case "!=":
		return cmp != 0
	case "<":
		return cmp < 0
	case "<=":
		return cmp <= 0
	case ">":
		return cmp > 0
	case ">=":
		return cmp >= 0
	}
	return false
}
