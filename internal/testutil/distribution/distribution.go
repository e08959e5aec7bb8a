// Package distribution runs the CNCF distribution registry (Debian's docker-registry) on
// a free loopback port for integration tests, and finds the tools those tests need.
package distribution

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// EnvIntegration turns integration tests on; `make test` sets it, together with the paths
// of the tools it installed. Where it is set, a missing tool fails the test: it never
// silently skips what CI is meant to run.
const EnvIntegration = "TRAINENV_INTEGRATION"

// Tool returns the path of a tool named by the environment variable env (as `make test`
// passes it). Without EnvIntegration the test is skipped; with it, a missing tool fails it.
func Tool(tb testing.TB, env string) string {
	tb.Helper()
	if os.Getenv(EnvIntegration) == "" {
		tb.Skipf("integration test: set %s=1 and %s (make test does both)", EnvIntegration, env)
	}
	path := os.Getenv(env)
	if path == "" {
		tb.Fatalf("%s is set but %s is not: run through make test, which installs the tool", EnvIntegration, env)
	}
	if _, err := exec.LookPath(path); err != nil {
		tb.Fatalf("%s=%s: %v", env, path, err)
	}
	return path
}

// Start runs the registry binary (docker-registry) with a fresh storage directory, with
// deletes enabled, and returns its host:port once it answers /v2/. It is stopped when tb ends.
func Start(tb testing.TB, binary string) string {
	tb.Helper()
	dir := tb.TempDir()
	host := freeLoopbackAddr(tb)
	config := fmt.Sprintf(`version: 0.1
log: {level: error}
storage:
  filesystem: {rootdirectory: %s}
  delete: {enabled: true}
http: {addr: %s}
`, filepath.Join(dir, "data"), host)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(binary, "serve", cfgPath)
	logFile, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting %s: %v", binary, err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logFile.Close()
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return host
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logFile.Name())
			tb.Fatalf("the registry did not answer on %s: %v\n%s", host, err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freeLoopbackAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
