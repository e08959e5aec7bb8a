package docscheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// root is the repository root, seen from this package.
var root = filepath.Join("..", "..")

// reasonSources are the Go files that declare reasons, and the troubleshooting section each
// belongs to. An empty section means: the condition type declared in the same const block
// (api/v1alpha1 declares each condition with its reasons).
var reasonSources = []struct{ file, section string }{
	{"api/v1alpha1/condition_types.go", ""},
	{"internal/nodeagent/agent.go", "Node"},
}

// sharedReasons are reasons declared with one condition that another condition uses too,
// by section: the registry failures of ImageResolved also hold Verified Unknown.
var sharedReasons = map[string][]string{
	"Verified": {"ReasonRegistryUnavailable", "ReasonRegistryUnauthorized"},
}

// declaredReasons returns, per section, the reasons the code declares (constant name by
// value), parsed from the sources with go/ast.
func declaredReasons(t *testing.T) map[string]map[string]string {
	t.Helper()
	api := map[string]string{} // api/v1alpha1 constants, for reasons declared as aliases
	// Event reasons are declared in api/v1alpha1 too; the packages that record them alias
	// them, and their section is the one of the aliasing file.
	events, err := parser.ParseFile(token.NewFileSet(), filepath.Join(root, "api/v1alpha1/event_reasons.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, decl := range events.Decls {
		if gd, ok := decl.(*ast.GenDecl); ok && gd.Tok == token.CONST {
			for name, v := range constValues(t, "api/v1alpha1/event_reasons.go", gd, api) {
				api[name] = v
			}
		}
	}
	out := map[string]map[string]string{}
	for _, src := range reasonSources {
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(root, src.file), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			consts := constValues(t, src.file, gd, api)
			if src.section == "" {
				for name, v := range consts {
					api[name] = v
				}
			}
			section := src.section
			if section == "" {
				for name, v := range consts {
					if strings.HasPrefix(name, "Condition") {
						section = v
					}
				}
			}
			for name, v := range consts {
				if !strings.HasPrefix(name, "Reason") {
					continue
				}
				if section == "" {
					t.Fatalf("%s: %s is declared in a const block without a Condition constant", src.file, name)
				}
				if out[section] == nil {
					out[section] = map[string]string{}
				}
				out[section][v] = name
			}
		}
	}
	for section, names := range sharedReasons {
		for _, name := range names {
			v, ok := api[name]
			if !ok {
				t.Fatalf("shared reason %s is not an api/v1alpha1 constant", name)
			}
			out[section][v] = name
		}
	}
	if len(out) < 5 {
		t.Fatalf("found reasons for %d sections only; the parser lost track of the sources", len(out))
	}
	return out
}

// constValues returns the string constants of a const block. A value may be a string
// literal or another package's constant (trainenvv1.ReasonX), looked up in api.
func constValues(t *testing.T, file string, gd *ast.GenDecl, api map[string]string) map[string]string {
	out := map[string]string{}
	for _, spec := range gd.Specs {
		vs := spec.(*ast.ValueSpec)
		for i, n := range vs.Names {
			if i >= len(vs.Values) {
				continue
			}
			switch v := vs.Values[i].(type) {
			case *ast.BasicLit:
				if v.Kind != token.STRING {
					continue
				}
				s, err := strconv.Unquote(v.Value)
				if err != nil {
					t.Fatal(err)
				}
				out[n.Name] = s
			case *ast.SelectorExpr:
				s, ok := api[v.Sel.Name]
				if !ok && strings.HasPrefix(n.Name, "Reason") {
					t.Fatalf("%s: %s = %s.%s, which is not an api/v1alpha1 constant", file, n.Name, v.X, v.Sel.Name)
				}
				out[n.Name] = s
			}
		}
	}
	return out
}

var codeWord = regexp.MustCompile("`([A-Za-z][A-Za-z0-9]*)`")

// documentedReasons returns, per level-2 heading's first `Word`, the first `Word` of each
// level-3 heading under it, from a Markdown file (code fences skipped).
func documentedReasons(t *testing.T, path string) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	section, fenced := "", false
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		if fenced {
			continue
		}
		m := codeWord.FindStringSubmatch(line)
		switch {
		case strings.HasPrefix(line, "## "):
			section = ""
			if m != nil {
				section = m[1]
			}
		case strings.HasPrefix(line, "### ") && section != "" && m != nil:
			out[section] = append(out[section], m[1])
		}
	}
	return out
}

// TestEveryReasonIsDocumented: a reason the code can show a user must be explained, under
// its condition, in docs/troubleshooting.md ("### `Reason`" under "## `Condition`").
func TestEveryReasonIsDocumented(t *testing.T) {
	doc := documentedReasons(t, filepath.Join(root, "docs", "troubleshooting.md"))
	declared := declaredReasons(t)
	for _, section := range sortedKeys(declared) {
		for _, value := range sortedKeys(declared[section]) {
			name := declared[section][value]
			if !slices.Contains(doc[section], value) {
				t.Errorf("reason %q (%s) is not documented: add a \"### `%s`\" heading under \"## `%s`\" in docs/troubleshooting.md",
					value, name, value, section)
			}
		}
	}
}

// TestNoUnknownReasonIsDocumented: the troubleshooting guide explains no reason the code
// does not declare (a renamed or removed reason must leave the guide too).
func TestNoUnknownReasonIsDocumented(t *testing.T) {
	declared := declaredReasons(t)
	doc := documentedReasons(t, filepath.Join(root, "docs", "troubleshooting.md"))
	for _, section := range sortedKeys(doc) {
		reasons := doc[section]
		known, ok := declared[section]
		if !ok {
			continue // a section of prose, not of a condition
		}
		for _, r := range reasons {
			if _, ok := known[r]; !ok {
				t.Errorf("docs/troubleshooting.md explains reason %q under %q, which the code does not declare there", r, section)
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
