// Command apidocs writes docs/api.md, the API reference of trainenv's custom resources, from
// the CRDs that controller-gen generates in config/crd/bases. The CRD's OpenAPI schema is
// what the API server enforces: it carries the Go doc comments as descriptions, and the
// defaults, enums, ranges, patterns and CEL rules (with their messages) exactly as applied,
// so the reference cannot drift from the validation. Run by `make docs`; a test in this
// package fails when the checked-in file is stale.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	crds := flag.String("crds", "config/crd/bases", "directory of the CRD YAML files")
	out := flag.String("out", "docs/api.md", "Markdown file to write")
	flag.Parse()
	if err := run(*crds, *out); err != nil {
		fmt.Fprintln(os.Stderr, "apidocs:", err)
		os.Exit(1)
	}
}

func run(crdDir, out string) error {
	crds, err := LoadCRDs(crdDir)
	if err != nil {
		return err
	}
	doc, err := Render(crds, crdDir)
	if err != nil {
		return err
	}
	return os.WriteFile(out, doc, 0o644)
}
