package entrypoint

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	rt "github.com/trainenv/trainenv/internal/testutil/realtools"
)

// child is the supervisor running in a child process.
type child struct {
	cmd    *exec.Cmd
	out    *rt.Buffer
	done   chan int
	exited chan struct{} // closed once the process has been waited for
}

// startChild starts cmd (this test binary in one of TestMain's modes).
func startChild(t *testing.T, cmd *exec.Cmd) *child {
	t.Helper()
	c := &child{cmd: cmd, out: &rt.Buffer{}, done: make(chan int, 1), exited: make(chan struct{})}
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := c.cmd.Wait()
		close(c.exited)
		var ee *exec.ExitError
		switch {
		case err == nil:
			c.done <- 0
		case errors.As(err, &ee):
			c.done <- ee.ExitCode()
		default:
			c.done <- -1
		}
	}()
	t.Cleanup(func() {
		// SIGTERM first, as the kubelet does: the entrypoint stops sshd and Jupyter before it
		// exits. A SIGKILL alone would leave them running, orphaned, after the test.
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.exited:
		case <-time.After(15 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
		if t.Failed() {
			t.Logf("child output:\n%s", c.out)
		}
	})
	return c
}

func startSupervisor(t *testing.T, spec supervisorSpec) *child {
	t.Helper()
	if spec.TerminationLog != "" {
		kubeletTerminationLog(t, spec.TerminationLog, rt.User{})
	}
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = []string{supervisorSpecEnv + "=" + string(data), "PATH=/usr/bin:/bin"}
	return startChild(t, cmd)
}

// exitCode waits for the child to end.
func (c *child) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case code := <-c.done:
		return code
	case <-time.After(60 * time.Second):
		t.Fatalf("the supervisor did not exit")
		return 0
	}
}

// running fails the test if the child has ended.
func (c *child) running(t *testing.T) {
	t.Helper()
	select {
	case code := <-c.done:
		c.done <- code
		t.Fatalf("the supervisor exited (%d) while it should run", code)
	default:
	}
}

func shell(name, dir, script string) Service {
	return Service{Name: name, Path: "/bin/sh", Args: []string{"-c", script}, Env: []string{"DIR=" + dir, "PATH=/usr/bin:/bin"}}
}

// waitFor polls until cond holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func exists(path string) func() bool {
	return func() bool { _, err := os.Stat(path); return err == nil }
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// A service that traps SIGTERM and records it.
const trapsTerm = `trap 'echo TERM >> "$DIR/$0.term"; exit 0' TERM; trap 'echo INT >> "$DIR/$0.term"; exit 0' INT; touch "$DIR/$0.ready"; while :; do sleep 0.05; done`

func trapping(name, dir string) Service {
	s := shell(name, dir, trapsTerm)
	s.Args = append(s.Args, name) // $0
	return s
}

func TestSupervisorForwardsSIGTERM(t *testing.T) {
	testForwards(t, syscall.SIGTERM, "TERM")
}

// SIGINT (Ctrl-C in `docker run`) is forwarded as itself, not turned into SIGTERM.
func TestSupervisorForwardsSIGINT(t *testing.T) {
	testForwards(t, syscall.SIGINT, "INT")
}

func testForwards(t *testing.T, sig syscall.Signal, want string) {
	dir := t.TempDir()
	log := filepath.Join(dir, "termination-log")
	c := startSupervisor(t, supervisorSpec{Services: []Service{trapping("sshd", dir), trapping("jupyter", dir)}, TerminationLog: log, GraceMillis: 20000})
	waitFor(t, "both services", func() bool { return exists(dir+"/sshd.ready")() && exists(dir+"/jupyter.ready")() })
	c.running(t)

	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	if code := c.exitCode(t); code != 0 {
		t.Errorf("exit %d after %v, want 0 (a requested stop)", code, sig)
	}
	for _, s := range []string{"sshd", "jupyter"} {
		if got := readFile(t, filepath.Join(dir, s+".term")); got != want {
			t.Errorf("%s got %q, want %s forwarded, once", s, got, want)
		}
	}
	if msg := readFile(t, log); msg != "" {
		t.Errorf("a requested stop wrote a termination message: %s", msg)
	}
}

func TestSupervisorExitsWhenAServiceDies(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "termination-log")
	dies := shell("sshd", dir, `while [ ! -e "$DIR/jupyter.ready" ]; do sleep 0.05; done; exit 3`)
	c := startSupervisor(t, supervisorSpec{Services: []Service{dies, trapping("jupyter", dir)}, TerminationLog: log, GraceMillis: 20000})
	if code := c.exitCode(t); code != 3 {
		t.Errorf("exit %d, want the dead service's status 3 (non-zero: the kubelet restarts the container)", code)
	}
	if got, want := readFile(t, log), "trainenv: sshd exited with status 3"; got != want {
		t.Errorf("termination message %q, want %q", got, want)
	}
	if got := readFile(t, filepath.Join(dir, "jupyter.term")); got != "TERM" {
		t.Errorf("the other service got %q, want it stopped with SIGTERM", got)
	}
}

// A server that exits 0 is still a failure; one killed by a signal reports it.
func TestSupervisorExitStatusOfServers(t *testing.T) {
	for _, tc := range []struct {
		script, message string
		code            int
	}{
		{"exit 0", "trainenv: jupyter exited with status 0", 1},
		{"kill -9 $$", "trainenv: jupyter was killed by signal 9 (killed)", 137},
	} {
		dir := t.TempDir()
		log := filepath.Join(dir, "termination-log")
		c := startSupervisor(t, supervisorSpec{Services: []Service{shell("jupyter", dir, tc.script)}, TerminationLog: log, GraceMillis: 1000})
		if code := c.exitCode(t); code != tc.code {
			t.Errorf("%s: exit %d, want %d", tc.script, code, tc.code)
		}
		if got := readFile(t, log); got != tc.message {
			t.Errorf("%s: termination message %q, want %q", tc.script, got, tc.message)
		}
	}
}

// The image's own command (Main) passes its exit status through.
func TestSupervisorMainCommandStatus(t *testing.T) {
	dir := t.TempDir()
	main := shell("command", dir, "exit 0")
	main.Main = true
	c := startSupervisor(t, supervisorSpec{Services: []Service{main}, TerminationLog: filepath.Join(dir, "log"), GraceMillis: 1000})
	if code := c.exitCode(t); code != 0 {
		t.Errorf("exit %d, want the command's 0", code)
	}
}

// An orphaned grandchild is handed to the supervisor (PID 1 in the pod, a subreaper here)
// and reaped when it ends, instead of lingering as a zombie.
func TestSupervisorReapsOrphans(t *testing.T) {
	dir := t.TempDir()
	// The service starts a grandchild in the background from a shell that exits at once.
	orphans := shell("jupyter", dir, `sh -c 'sleep 1 & echo $! > "$DIR/orphan"'; exec sleep 1000`)
	c := startSupervisor(t, supervisorSpec{Services: []Service{orphans}, GraceMillis: 5000})
	waitFor(t, "the orphan", func() bool { return exists(dir+"/orphan")() && readFile(t, dir+"/orphan") != "" })
	pid, err := strconv.Atoi(readFile(t, dir+"/orphan"))
	if err != nil {
		t.Fatal(err)
	}
	status := func(field string) string {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			return ""
		}
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, field+":"); ok {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	if ppid := status("PPid"); ppid != strconv.Itoa(c.cmd.Process.Pid) {
		t.Fatalf("the orphan's parent is %q, want the supervisor %d", ppid, c.cmd.Process.Pid)
	}
	// Once it ends, nothing is left of it: a zombie would keep /proc/PID with state Z.
	waitFor(t, "the orphan to be reaped", func() bool { return !exists("/proc/" + strconv.Itoa(pid))() })
	c.running(t) // an orphan ending is not a service ending
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	if code := c.exitCode(t); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
}

// A service that ignores SIGTERM is killed after the grace period.
func TestSupervisorKillsAfterGrace(t *testing.T) {
	dir := t.TempDir()
	stubborn := shell("jupyter", dir, `trap '' TERM; touch "$DIR/ready"; while :; do sleep 0.05; done`)
	c := startSupervisor(t, supervisorSpec{Services: []Service{stubborn}, GraceMillis: 300})
	waitFor(t, "the service", exists(dir+"/ready"))
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	if code := c.exitCode(t); code != 0 {
		t.Errorf("exit %d, want 0 (a requested stop)", code)
	}
	if !strings.Contains(c.out.String(), "killing them") {
		t.Errorf("no SIGKILL after the grace period:\n%s", c.out)
	}
}

func TestSupervisorStopsOnRequest(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "termination-log")
	reason := "trainenv: idle for 2h0m0s: test"
	c := startSupervisor(t, supervisorSpec{Services: []Service{trapping("sshd", dir)}, TerminationLog: log,
		GraceMillis: 20000, StopAfterMillis: 200, StopReason: reason})
	if code := c.exitCode(t); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	if got := readFile(t, log); got != reason {
		t.Errorf("termination message %q, want %q", got, reason)
	}
	if got := readFile(t, filepath.Join(dir, "sshd.term")); got != "TERM" {
		t.Errorf("the service got %q, want SIGTERM", got)
	}
}

func TestSupervisorCannotStart(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "termination-log")
	c := startSupervisor(t, supervisorSpec{Services: []Service{trapping("jupyter", dir), {Name: "sshd", Path: "/nonexistent/sshd"}},
		TerminationLog: log, GraceMillis: 20000})
	if code := c.exitCode(t); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if got := readFile(t, log); !strings.HasPrefix(got, "trainenv: cannot start sshd:") {
		t.Errorf("termination message %q", got)
	}
}

// kubeletTerminationLog creates the empty, writable file the kubelet provides.
func kubeletTerminationLog(t *testing.T, path string, owner rt.User) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	owner.Own(t, path)
}

func TestTerminationMessageOnlyWhereTheKubeletProvidesIt(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "termination-log")
	if err := writeTerminationMessage(missing, "trainenv: x"); err != nil || exists(missing)() {
		t.Errorf("outside a container: err %v, created %v; want nothing written", err, exists(missing)())
	}
	present := filepath.Join(t.TempDir(), "termination-log")
	if err := os.WriteFile(present, []byte("an older, longer message\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeTerminationMessage(present, "trainenv: x"); err != nil || readFile(t, present) != "trainenv: x" {
		t.Errorf("err %v, file %q; want the message alone", err, readFile(t, present))
	}
}
