// Package badinput keeps docs/bad-input.md in step with the tests that try bad input: each
// test owns a generated block of the document (a table of what was tried and the exact
// message a user sees), rewrites it when UPDATE_BAD_INPUT=1 is set, and otherwise fails
// when the document differs from what the API server and the operator actually said.
package badinput

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Row is one bad input and what the user sees.
type Row struct {
	Input, Where, Message string
}

// Check compares block (by name) of docs/bad-input.md with rows, or rewrites it.
func Check(t *testing.T, block, header string, rows []Row) {
	t.Helper()
	path := filepath.Join(repoRoot(), "docs", "bad-input.md")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (create it with UPDATE_BAD_INPUT=1)", err)
	}
	doc := string(raw)
	begin, end := "<!-- BEGIN GENERATED: "+block+" -->\n", "<!-- END GENERATED: "+block+" -->"
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("%s has no block %q: add the lines %q and %q", path, block, begin, end)
	}
	want := render(header, rows)
	if doc[i+len(begin):j] == want {
		return
	}
	if os.Getenv("UPDATE_BAD_INPUT") == "" {
		t.Fatalf("docs/bad-input.md is not current for %s: rerun with UPDATE_BAD_INPUT=1 and commit it; it should read:\n%s", block, want)
	}
	if err := os.WriteFile(path, []byte(doc[:i+len(begin)]+want+doc[j:]), 0o644); err != nil {
		t.Fatal(err)
	}
}

func render(header string, rows []Row) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| # | %s | where | what the user sees |\n|---|---|---|---|\n", header)
	for n, r := range rows {
		fmt.Fprintf(&b, "| %d | %s | %s | %s |\n", n+1, cell(r.Input), cell(r.Where), cell(r.Message))
	}
	return b.String()
}

func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", " ")
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}
