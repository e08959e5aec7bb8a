// Package realtools runs the real programs trainenv's access tests need (sshd, ssh,
// ssh-audit, the Jupyter server) as a non-root user, the way they run in the pod.
//
// Tests that need them call Require: under `make test` (TRAINENV_INTEGRATION=1, with the
// programs installed by `make access-tools`) a missing program fails the test; a plain
// `go test` without the variable skips it.
package realtools

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// IntegrationEnv, when set, makes missing programs a test failure.
const IntegrationEnv = "TRAINENV_INTEGRATION"

// Require returns the paths of the programs (names or absolute paths), failing the test
// when one is missing under IntegrationEnv and skipping it otherwise.
func Require(t testing.TB, programs ...string) []string {
	t.Helper()
	paths := make([]string, 0, len(programs))
	for _, p := range programs {
		path, err := exec.LookPath(p)
		if err != nil {
			if os.Getenv(IntegrationEnv) != "" {
				t.Fatalf("%s is needed and missing (make access-tools installs it): %v", p, err)
			}
			t.Skipf("%s is missing; `make test` installs it and runs this test (%s=1)", p, IntegrationEnv)
		}
		paths = append(paths, path)
	}
	return paths
}

// User is the non-root account the servers run as.
type User struct {
	Name     string
	UID, GID uint32
	// asOther: the test runs as root and starts the servers as this user.
	asOther bool
}

// testUserName is created (once per machine) when the tests run as root.
const testUserName = "trainenv-test"

var userMu sync.Mutex

// NonRoot returns the user the servers run as: the current user when that is not root,
// otherwise the system account trainenv-test, created with useradd when missing (as an
// image creates its user; sshd needs a passwd entry).
func NonRoot(t testing.TB) User {
	t.Helper()
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		return User{Name: u.Username, UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
	}
	userMu.Lock()
	defer userMu.Unlock()
	var lastErr error
	// Test binaries of several packages may race to create the user: retry the lookup.
	for range 5 {
		if u, err := user.Lookup(testUserName); err == nil {
			uid, _ := strconv.ParseUint(u.Uid, 10, 32)
			gid, _ := strconv.ParseUint(u.Gid, 10, 32)
			return User{Name: u.Username, UID: uint32(uid), GID: uint32(gid), asOther: true}
		}
		out, err := exec.Command("useradd", "--system", "--user-group", "--shell", "/bin/sh",
			"--home-dir", "/nonexistent", "--no-create-home", testUserName).CombinedOutput()
		if err != nil {
			lastErr = fmt.Errorf("useradd: %w: %s", err, out)
			time.Sleep(200 * time.Millisecond)
		}
	}
	t.Fatalf("cannot create the test user %s: %v", testUserName, lastErr)
	return User{}
}

// Command prepares a program to run as u.
func (u User) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	if u.asOther {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: u.UID, Gid: u.GID}}
	}
	return cmd
}

// Own hands a path created by the test over to u.
func (u User) Own(t testing.TB, paths ...string) {
	t.Helper()
	if !u.asOther {
		return
	}
	for _, p := range paths {
		if err := os.Lchown(p, int(u.UID), int(u.GID)); err != nil {
			t.Fatal(err)
		}
	}
}

// SafeDir returns a new directory owned by u (mode 0700) whose parents are all owned by
// root or u and writable by no one else, as sshd's StrictModes demands of the path to
// authorized_keys (t.TempDir is under the world-writable /tmp).
func SafeDir(t testing.TB, u User) string {
	t.Helper()
	base := "/run/trainenv-test"
	if !u.asOther {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		base = home
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(base, ".trainenv-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	u.Own(t, dir)
	return dir
}

// WriteFile writes a file owned by u with the given mode.
func (u User) WriteFile(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	u.Own(t, path)
}

// Mkdir creates a directory owned by u.
func (u User) Mkdir(t testing.TB, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(path, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	u.Own(t, path)
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Buffer is a goroutine-safe log of a server's output.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Start runs a server until the test ends, logging its output on failure, and waits
// until it accepts connections on 127.0.0.1:port.
func Start(t testing.TB, cmd *exec.Cmd, port int) *Buffer {
	t.Helper()
	out := &Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		// The exit status of a server told to stop says nothing: only wait for the exit.
		select {
		case <-done: //nolint:errcheck // see above
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done //nolint:errcheck // see above
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(cmd.Path), out)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if err == nil {
			c.Close()
			return out
		}
		select {
		case err := <-done:
			t.Fatalf("%s exited before listening: %v\n%s", cmd.Path, err, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on port %d: %v\n%s", cmd.Path, port, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Run runs a program to its end and returns its combined output and exit code (-1 when it
// could not run).
func Run(cmd *exec.Cmd) (string, int) {
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	default:
		return string(out) + err.Error(), -1
	}
}

// Lines splits output into trimmed, non-empty lines.
func Lines(s string) []string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}
