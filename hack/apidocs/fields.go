package main

import (
	"fmt"
	"strconv"
	"strings"
)

// quantityPattern is the pattern controller-gen gives resource.Quantity fields; such a field
// is shown as a quantity ("4Gi", "500m") rather than as "integer or string" with a regexp.
const quantityPattern = `^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$`

// typeName is the field's type in words, linking to the section of a nested object.
func typeName(kind, path string, f *schema) string {
	switch {
	case f.XIntOrString && f.Pattern == quantityPattern:
		return "quantity"
	case f.XIntOrString:
		return "integer or string"
	case f.Type == "array" && f.Items != nil && f.Items.Schema != nil:
		return "list of " + typeName(kind, path+"[]", f.Items.Schema)
	case f.Type == "object" && len(f.Properties) > 0:
		return fmt.Sprintf("[object](#%s)", anchor(kind, path))
	case f.Type == "object" && f.AdditionalProperties != nil && f.AdditionalProperties.Schema != nil:
		return "map of string to " + typeName(kind, path+"{}", f.AdditionalProperties.Schema)
	case f.Format != "":
		return fmt.Sprintf("%s (%s)", f.Type, f.Format)
	case f.Type == "":
		return "any"
	}
	return f.Type
}

// constraints are the field's validations in words, as Markdown. CEL rules of a nested
// object are left to that object's section.
func constraints(f *schema) []string {
	var out []string
	if len(f.Enum) > 0 {
		vals := make([]string, len(f.Enum))
		for i, e := range f.Enum {
			vals[i] = code(defaultValue(e.Raw))
		}
		out = append(out, "one of "+strings.Join(vals, ", "))
	}
	if r := bounds(f.Minimum, f.Maximum, f.ExclusiveMinimum, f.ExclusiveMaximum); r != "" {
		out = append(out, r)
	}
	if r := counts(f.MinLength, f.MaxLength, "character"); r != "" {
		out = append(out, r)
	}
	if r := counts(f.MinItems, f.MaxItems, "item"); r != "" {
		out = append(out, r)
	}
	if f.Pattern != "" && f.Pattern != quantityPattern {
		out = append(out, "must match "+code(f.Pattern))
	}
	if f.XListType != nil && *f.XListType == "set" {
		out = append(out, "items are unique")
	}
	if f.XListType != nil && *f.XListType == "map" && len(f.XListMapKeys) > 0 {
		keys := make([]string, len(f.XListMapKeys))
		for i, k := range f.XListMapKeys {
			keys[i] = code(k)
		}
		out = append(out, "at most one item per "+strings.Join(keys, ", "))
	}
	if f.Type == "array" && f.Items != nil && f.Items.Schema != nil && len(f.Items.Schema.Properties) == 0 {
		for _, c := range constraints(f.Items.Schema) {
			out = append(out, "each item: "+c)
		}
	}
	if obj, _ := nestedObject(f); obj != f {
		for _, r := range f.XValidations {
			out = append(out, escape(ruleMessage(r.Message, r.MessageExpression)))
		}
	}
	return out
}

func ruleMessage(message, expression string) string {
	if message == "" && expression != "" {
		return "a rule (message computed by " + expression + ")"
	}
	return message
}

func bounds(lo, hi *float64, exLo, exHi bool) string {
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	switch {
	case lo != nil && hi != nil && !exLo && !exHi:
		return fmt.Sprintf("from %s to %s", num(*lo), num(*hi))
	case lo != nil && hi != nil:
		return fmt.Sprintf("%s %s and %s %s", above(exLo), num(*lo), below(exHi), num(*hi))
	case lo != nil:
		return above(exLo) + " " + num(*lo)
	case hi != nil:
		return below(exHi) + " " + num(*hi)
	}
	return ""
}

func above(exclusive bool) string {
	if exclusive {
		return "greater than"
	}
	return "at least"
}

func below(exclusive bool) string {
	if exclusive {
		return "less than"
	}
	return "at most"
}

func counts(lo, hi *int64, unit string) string {
	plural := func(n int64) string {
		if n == 1 {
			return fmt.Sprintf("%d %s", n, unit)
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case lo != nil && hi != nil:
		return fmt.Sprintf("%d to %s", *lo, plural(*hi))
	case lo != nil:
		return "at least " + plural(*lo)
	case hi != nil:
		return "at most " + plural(*hi)
	}
	return ""
}
