package main

import (
	"fmt"
	"slices"
	"strings"
	"unicode"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// UI hints OLM consoles understand (operator-framework's "x-descriptors").
const (
	xBoolean    = "urn:alm:descriptor:com.tectonic.ui:booleanSwitch"
	xNumber     = "urn:alm:descriptor:com.tectonic.ui:number"
	xText       = "urn:alm:descriptor:com.tectonic.ui:text"
	xSelect     = "urn:alm:descriptor:com.tectonic.ui:select:"
	xFieldGroup = "urn:alm:descriptor:com.tectonic.ui:fieldGroup:"
	xSecret     = "urn:alm:descriptor:io.kubernetes:Secret"
	xConditions = "urn:alm:descriptor:io.kubernetes.conditions"
	xPhase      = "urn:alm:descriptor:io.kubernetes.phase"
	xStatusText = "urn:alm:descriptor:text"
)

// descriptors derives spec and status descriptors from the CRD's schema of version: one per
// field down to three levels, named and described as the API documents them.
func descriptors(crd *unstructured.Unstructured, version string) (spec, status []any, err error) {
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	for _, v := range versions {
		vm := v.(map[string]any)
		if vm["name"] != version {
			continue
		}
		props, _, _ := unstructured.NestedMap(vm, "schema", "openAPIV3Schema", "properties")
		specSchema, _ := props["spec"].(map[string]any)
		statusSchema, _ := props["status"].(map[string]any)
		spec = walk(specSchema, "", 3, specHints)
		status = walk(statusSchema, "", 1, statusHints)
		return spec, status, nil
	}
	return nil, nil, fmt.Errorf("%s has no version %s", crd.GetName(), version)
}

type hints func(path string, schema map[string]any) []any

func walk(schema map[string]any, prefix string, depth int, hint hints) []any {
	props, _ := schema["properties"].(map[string]any)
	var out []any
	for _, name := range slices.Sorted(mapsKeys(props)) {
		child := props[name].(map[string]any)
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		_, hasProps := child["properties"]
		if hasProps && depth > 1 {
			out = append(out, walk(child, path, depth-1, hint)...)
			continue
		}
		d := map[string]any{"path": path, "displayName": displayName(path), "description": firstSentence(child["description"])}
		if x := hint(path, child); len(x) > 0 {
			d["x-descriptors"] = x
		}
		out = append(out, d)
	}
	return out
}

func specHints(path string, s map[string]any) []any {
	var x []any
	switch {
	case strings.HasSuffix(path, "SecretRef.name"):
		x = append(x, xSecret)
	case s["type"] == "boolean":
		x = append(x, xBoolean)
	case s["type"] == "integer" || s["type"] == "number":
		x = append(x, xNumber)
	case s["enum"] != nil:
		for _, e := range s["enum"].([]any) {
			x = append(x, xSelect+fmt.Sprint(e))
		}
	case s["type"] == "string" || s["x-kubernetes-int-or-string"] == true:
		x = append(x, xText)
	}
	if top, _, nested := strings.Cut(path, "."); nested {
		x = append(x, xFieldGroup+top)
	}
	return x
}

func statusHints(path string, _ map[string]any) []any {
	switch path {
	case "conditions":
		return []any{xConditions}
	case "phase":
		return []any{xPhase}
	}
	return []any{xStatusText}
}

// acronyms are written as the README writes them.
var acronyms = map[string]string{"gpu": "GPU", "gpus": "GPUs", "ssh": "SSH", "cuda": "CUDA", "cpu": "CPU",
	"shm": "Shm", "tcp": "TCP", "url": "URL", "id": "ID"}

// displayName turns "ssh.clientAliveIntervalSeconds" into "SSH Client Alive Interval Seconds".
func displayName(path string) string {
	var words []string
	for _, seg := range strings.Split(path, ".") {
		start := 0
		runes := []rune(seg)
		for i := 1; i <= len(runes); i++ {
			if i == len(runes) || (unicode.IsUpper(runes[i]) && !unicode.IsUpper(runes[i-1])) {
				words = append(words, string(runes[start:i]))
				start = i
			}
		}
	}
	for i, w := range words {
		if a, ok := acronyms[strings.ToLower(w)]; ok {
			words[i] = a
		} else {
			words[i] = strings.ToUpper(w[:1]) + w[1:]
		}
	}
	return strings.Join(words, " ")
}

func firstSentence(v any) string {
	s := strings.Join(strings.Fields(fmt.Sprint(v)), " ")
	if v == nil {
		return ""
	}
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '.' && s[i+1] == ' ' && !strings.HasSuffix(s[:i], "e.g") && !strings.HasSuffix(s[:i], "i.e") {
			return s[:i+1]
		}
	}
	return s
}

func mapsKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
