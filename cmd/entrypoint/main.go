// Command entrypoint is PID 1 of a trainenv environment's container (see
// internal/entrypoint). Built static (CGO_ENABLED=0): it runs in any user image.
package main

import (
	"os"

	"github.com/trainenv/trainenv/internal/entrypoint"
)

func main() {
	os.Exit(entrypoint.Main(os.Args[1:], os.Stderr))
}
