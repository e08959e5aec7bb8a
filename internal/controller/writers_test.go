package controller

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestOneWriterPerCondition keeps the rule of conditions.go: each condition type is set
// by one setter, the only call of setCondition for it, and the setter is called from one
// file, its step's. A reader finds every writer of a condition with one grep.
func TestOneWriterPerCondition(t *testing.T) {
	setters := map[string]struct{ condition, file string }{
		"setImageResolved": {"ConditionImageResolved", "resolve.go"},
		"setVerified":      {"ConditionVerified", "verify.go"},
		"setCompatible":    {"ConditionCompatible", "compatible.go"},
		"setWorkloadReady": {"ConditionWorkloadReady", "workload.go"},
		"setReady":         {"ConditionReady", "conditions.go"},
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	written := map[string]int{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				switch callee := calleeName(call); {
				case callee == "setCondition":
					s, isSetter := setters[fn.Name.Name]
					if !isSetter || len(call.Args) < 2 || selectorName(call.Args[1]) != s.condition {
						t.Errorf("%s: %s calls setCondition directly; use the condition's setter", fset.Position(call.Pos()), fn.Name.Name)
					}
					written[fn.Name.Name]++
				case callee == "SetStatusCondition" && fn.Name.Name != "setCondition":
					t.Errorf("%s: %s writes a condition with meta.SetStatusCondition; use the condition's setter", fset.Position(call.Pos()), fn.Name.Name)
				case setters[callee].file != "" && setters[callee].file != name:
					t.Errorf("%s: %s is called outside %s, the only file that writes %s", fset.Position(call.Pos()), callee, setters[callee].file, setters[callee].condition)
				}
				return true
			})
		}
	}
	for name := range setters {
		if written[name] != 1 {
			t.Errorf("setter %s calls setCondition %d times; want once", name, written[name])
		}
	}
}

func calleeName(call *ast.CallExpr) string {
	switch f := call.Fun.(type) {
	case *ast.Ident:
		return f.Name
	case *ast.SelectorExpr:
		return f.Sel.Name
	}
	return ""
}

func selectorName(e ast.Expr) string {
	if s, ok := e.(*ast.SelectorExpr); ok {
		return s.Sel.Name
	}
	return ""
}
