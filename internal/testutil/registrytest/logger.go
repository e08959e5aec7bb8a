package registrytest

import (
	"io"
	"log"
)

// nopLogger keeps the registry's access log out of test output.
func nopLogger() *log.Logger { return log.New(io.Discard, "", 0) }
