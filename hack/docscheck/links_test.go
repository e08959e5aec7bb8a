package docscheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// guides are the hand-written Markdown files, relative to the repository root.
func guides(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := []string{"README.md"}
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		if rel != filepath.Join("docs", "api.md") { // generated, checked by hack/apidocs
			out = append(out, rel)
		}
	}
	return out
}

func read(t *testing.T, rel string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

var (
	mdLink   = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	anchorID = regexp.MustCompile(`<a id="([^"]+)"></a>`)
)

// anchors are the link targets of a Markdown file: explicit ids and GitHub's heading slugs.
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	for _, m := range anchorID.FindAllStringSubmatch(text, -1) {
		out[m[1]] = true
	}
	seen := map[string]int{}
	fenced := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		if fenced || !strings.HasPrefix(line, "#") {
			continue
		}
		slug := githubSlug(strings.TrimLeft(line, "#"))
		if n := seen[slug]; n > 0 {
			out[slug+"-"+strconv.Itoa(n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

// githubSlug is how GitHub names a heading's anchor: lower case, punctuation dropped
// (but hyphens and underscores), spaces as hyphens.
func githubSlug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestLinksResolve: every relative link of the guides points at a file of the repository,
// and every #anchor at a heading or id of its target.
func TestLinksResolve(t *testing.T) {
	for _, rel := range guides(t) {
		text := read(t, rel)
		for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			targetRel := rel
			if file != "" {
				targetRel = filepath.Join(filepath.Dir(rel), file)
				if _, err := os.Stat(filepath.Join(root, targetRel)); err != nil {
					t.Errorf("%s links to %s, which does not exist", rel, target)
					continue
				}
			}
			if anchor != "" && strings.HasSuffix(targetRel, ".md") && !anchors(read(t, targetRel))[anchor] {
				t.Errorf("%s links to %s: %s has no heading or id %q", rel, target, targetRel, anchor)
			}
		}
	}
}

var (
	codeSpan   = regexp.MustCompile("`([^`]+)`")
	makeTarget = regexp.MustCompile(`(?:^|[\s(;&|])make ([a-z][a-z0-9-]*)`)
	makefileTg = regexp.MustCompile(`(?m)^([a-z][a-z0-9-]*):`)
)

// codeText is what the guides show as code: fenced blocks and inline code spans.
func codeText(text string) string {
	var b strings.Builder
	fenced := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			b.WriteString(line + "\n")
			continue
		}
		for _, m := range codeSpan.FindAllStringSubmatch(line, -1) {
			b.WriteString(m[1] + "\n")
		}
	}
	return b.String()
}

// TestMakeTargetsExist: every `make TARGET` the guides tell people to run is a target of the
// Makefile.
func TestMakeTargetsExist(t *testing.T) {
	targets := map[string]bool{}
	for _, m := range makefileTg.FindAllStringSubmatch(read(t, "Makefile"), -1) {
		targets[m[1]] = true
	}
	for _, rel := range guides(t) {
		for _, m := range makeTarget.FindAllStringSubmatch(codeText(read(t, rel)), -1) {
			if !targets[m[1]] {
				t.Errorf("%s tells to run `make %s`, which is not a Makefile target", rel, m[1])
			}
		}
	}
}

// fieldPath matches spec.a.b and status.a.b where they start a word (not pod.spec.x or a
// JSONPath's .spec.x, which belong to other objects).
var fieldPath = regexp.MustCompile(`(?:^|[^.\w/{-])((?:spec|status)(?:\.[a-zA-Z][a-zA-Z0-9]*)+)`)

// TestFieldPathsExist: every spec.* and status.* path the guides name is a field of the
// TrainingEnvironment CRD, so the guides cannot describe a field that does not exist.
func TestFieldPathsExist(t *testing.T) {
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal([]byte(read(t, "config/crd/bases/trainenv.io_trainingenvironments.yaml")), &crd); err != nil {
		t.Fatal(err)
	}
	schema := crd.Spec.Versions[0].Schema.OpenAPIV3Schema
	checked := 0
	for _, rel := range guides(t) {
		for _, m := range fieldPath.FindAllStringSubmatch(read(t, rel), -1) {
			checked++
			if !hasPath(schema, strings.Split(m[1], ".")) {
				t.Errorf("%s names %s, which is not a field of TrainingEnvironment", rel, m[1])
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d field paths found in the guides: the pattern no longer matches them", checked)
	}
}

func hasPath(s *apiextensionsv1.JSONSchemaProps, path []string) bool {
	for _, p := range path {
		for s.Type == "array" && s.Items != nil && s.Items.Schema != nil {
			s = s.Items.Schema
		}
		child, ok := s.Properties[p]
		if !ok {
			return false
		}
		s = &child
	}
	return true
}
