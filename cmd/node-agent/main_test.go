package main

import (
	"os/exec"
	"strings"
	"testing"
)

// NVML is cgo and only the agent needs it: the manager stays a cgo-free binary, buildable
// and runnable without a C toolchain or libc.
func TestManagerDoesNotLinkNVML(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/trainenv/trainenv/cmd").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/NVIDIA/go-nvml") || pkg == "github.com/trainenv/trainenv/internal/nodeagent" ||
			pkg == "github.com/trainenv/trainenv/internal/nvmlread" || pkg == "github.com/trainenv/trainenv/internal/preflight" {
			t.Errorf("the manager (./cmd) depends on %s", pkg)
		}
	}
}
