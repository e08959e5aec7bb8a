// Command kubectl-trainenv is the kubectl plugin of trainenv: `kubectl trainenv connect`,
// `ssh-config`, `ssh-proxy` and `resume` (see internal/plugin).
package main

import (
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/trainenv/trainenv/internal/plugin"
)

func main() {
	cmd := plugin.NewCommand(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	if err := cmd.Execute(); err != nil {
		os.Exit(1)
	}
}
