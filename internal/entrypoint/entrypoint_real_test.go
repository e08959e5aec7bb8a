package entrypoint

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trainenv/trainenv/internal/access"
	rt "github.com/trainenv/trainenv/internal/testutil/realtools"
)

// pod is what the operator would have mounted into the environment's container: the
// host-key and authorized-keys Secrets, a runtime directory, the token; the entrypoint
// is this test binary, copied where the non-root user can run it.
type pod struct {
	user     rt.User
	base     string
	paths    Paths
	hostKeys map[string][]byte
	client   rt.ClientKey
	token    string
	binary   string
}

// newPod lays the pod out under base, a directory owned by the non-root user.
func newPod(t *testing.T, user rt.User, base string) *pod {
	t.Helper()
	p := &pod{user: user, base: base, client: rt.NewClientKey(t), binary: filepath.Join(base, "entrypoint")}
	var err error
	if p.hostKeys, err = access.GenerateHostKeys(); err != nil {
		t.Fatal(err)
	}
	if p.token, err = access.GenerateToken(); err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(base, "secrets", "ssh-host-keys")
	authorized := filepath.Join(base, "secrets", "ssh-authorized-keys")
	for _, d := range []string{keys, authorized} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range p.hostKeys { // as a Secret volume shows them: readable, not private
		if err := os.WriteFile(filepath.Join(keys, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(authorized, access.AuthorizedKeysFile), p.client.AuthorizedKey, 0o644); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := copyExecutable(self, p.binary); err != nil {
		t.Fatal(err)
	}
	p.paths = Paths{
		RuntimeDir: filepath.Join(base, "run"), HostKeysDir: keys,
		AuthorizedKeys: filepath.Join(authorized, access.AuthorizedKeysFile),
		Passwd:         "/etc/passwd", TerminationLog: filepath.Join(base, "termination-log"), ProcDir: "/proc",
		SSHD: rt.SSHDPath, SSHPort: rt.FreePort(t), JupyterPort: rt.FreePort(t),
	}
	kubeletTerminationLog(t, p.paths.TerminationLog, user)
	return p
}

func safePod(t *testing.T) *pod {
	rt.Require(t, rt.SSHDPath, "ssh", "jupyter-server")
	u := rt.NonRoot(t)
	return newPod(t, u, rt.SafeDir(t, u))
}

// command is the entrypoint as the container runs it: as the non-root user, with the
// access configuration and the token in its environment.
func (p *pod) command(cfg access.Config) *exec.Cmd {
	paths, _ := json.Marshal(p.paths)
	cmd := p.user.Command(p.binary)
	cmd.Env = []string{
		entrypointSpecEnv + "=" + string(paths), access.ConfigEnv + "=" + cfg.Encode(),
		access.JupyterTokenEnv + "=" + p.token, "HOME=" + p.base, "PATH=/usr/local/bin:/usr/bin:/bin",
		"TRAINENV_TEST_VAR=from the image",
	}
	cmd.Dir = p.base
	return cmd
}

func (p *pod) start(t *testing.T, cfg access.Config) *child {
	t.Helper()
	c := startChild(t, p.command(cfg))
	for _, port := range []int{p.paths.SSHPort, p.paths.JupyterPort} {
		waitFor(t, fmt.Sprintf("port %d", port), func() bool {
			c.running(t)
			conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
			if err == nil {
				conn.Close()
			}
			return err == nil
		})
	}
	return c
}

// ssh logs in with the user's key, checking the host key against the known_hosts line
// made from the environment's host-key Secret; it returns the session's output lines.
func (p *pod) ssh(t *testing.T, command string) ([]string, int) {
	t.Helper()
	known := rt.KnownHosts(t, "env", p.hostKeys)
	out, code := rt.Login{Port: p.paths.SSHPort, Key: p.client.Path, KnownHosts: known, Alias: "env", User: p.user.Name, Command: command}.Run()
	var lines []string
	for _, l := range rt.Lines(out) {
		if !strings.HasPrefix(l, "Could not chdir to home directory") { // the test user's home is /nonexistent
			lines = append(lines, l)
		}
	}
	return lines, code
}

func (p *pod) jupyter(t *testing.T, method, path string, withToken bool) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", p.paths.JupyterPort, path), nil)
	if withToken {
		req.Header.Set("Authorization", "token "+p.token)
	}
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

var conf = access.Config{
	SSH:     &access.SSHConfig{ClientAliveIntervalSeconds: 30, ClientAliveCountMax: 10, TCPKeepAlive: true},
	Jupyter: &access.JupyterConfig{WebsocketPingIntervalSeconds: 30},
}

// The entrypoint runs sshd and Jupyter as the non-root user from what the operator
// mounts, and stops the container when one of them dies.
func TestEntrypointRealServesAndFailsFast(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pod    func(t *testing.T) *pod
		strict string
	}{
		{"runtime directory sshd's StrictModes accepts", safePod, "yes"},
		{"runtime directory under a world-writable one, like an emptyDir", func(t *testing.T) *pod {
			rt.Require(t, rt.SSHDPath, "ssh", "jupyter-server")
			u := rt.NonRoot(t)
			base, err := os.MkdirTemp("/tmp", "trainenv-pod-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(base) })
			u.Own(t, base)
			return newPod(t, u, base)
		}, "no"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.pod(t)
			c := p.start(t, conf)
			sshdConfig := readFile(t, filepath.Join(p.paths.RuntimeDir, "ssh", "sshd_config"))
			if !strings.Contains(sshdConfig, "\nStrictModes "+tc.strict+"\n") {
				t.Errorf("sshd_config does not say StrictModes %s:\n%s", tc.strict, sshdConfig)
			}
			checkPrivate(t, filepath.Join(p.paths.RuntimeDir, "ssh"))

			lines, code := p.ssh(t, `id -u; printf '%s\n' "$TRAINENV_TEST_VAR" "${JUPYTER_TOKEN:-no token}" "${TRAINENV_ACCESS_CONFIG:-no config}"`)
			want := []string{strconv.Itoa(int(p.user.UID)), "from the image", "no token", "no config"}
			if code != 0 || strings.Join(lines, "|") != strings.Join(want, "|") {
				t.Errorf("ssh session: exit %d, %q; want %q (the user, the image's environment, no secrets)", code, lines, want)
			}
			if code, _ := p.jupyter(t, "GET", "/api/status", false); code != http.StatusForbidden {
				t.Errorf("Jupyter without the token: %d, want 403", code)
			}
			if code, body := p.jupyter(t, "GET", "/api/status", true); code != http.StatusOK {
				t.Errorf("Jupyter with the token: %d %s", code, body)
			}

			// sshd dies: the entrypoint stops Jupyter and exits non-zero with the reason.
			pid, err := strconv.Atoi(readFile(t, filepath.Join(p.paths.RuntimeDir, "ssh", "sshd.pid")))
			if err != nil {
				t.Fatal(err)
			}
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			if code := c.exitCode(t); code != 128+9 {
				t.Errorf("exit %d, want 137", code)
			}
			if got, want := readFile(t, p.paths.TerminationLog), "trainenv: sshd was killed by signal 9 (killed)"; got != want {
				t.Errorf("termination message %q, want %q", got, want)
			}
			if conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(p.paths.JupyterPort)); err == nil {
				conn.Close()
				t.Error("Jupyter still listens after the entrypoint exited")
			}
		})
	}
}

// checkPrivate: the runtime copies are the user's alone.
func checkPrivate(t *testing.T, dir string) {
	t.Helper()
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("%s has mode %v, want 0700", dir, st.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().IsRegular() && info.Mode().Perm()&0o077 != 0 && e.Name() != "sshd.pid" {
			t.Errorf("%s has mode %v, want no access for group or others", e.Name(), info.Mode().Perm())
		}
	}
}

func TestEntrypointRealSIGTERM(t *testing.T) {
	p := safePod(t)
	c := p.start(t, conf)
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := c.exitCode(t); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
	for _, port := range []int{p.paths.SSHPort, p.paths.JupyterPort} {
		if conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			conn.Close()
			t.Errorf("port %d still open after the entrypoint stopped", port)
		}
	}
	if msg := readFile(t, p.paths.TerminationLog); msg != "" {
		t.Errorf("a requested stop wrote a termination message: %s", msg)
	}
}

// The entrypoint refuses to start what would be unsafe or cannot work, and says why.
func TestEntrypointRealRefuses(t *testing.T) {
	p := safePod(t)
	readOnlyPasswd := filepath.Join(p.base, "passwd")
	if err := os.WriteFile(readOnlyPasswd, []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(cmd *exec.Cmd, p *pod)
		want string
	}{
		{"an empty token", func(cmd *exec.Cmd, _ *pod) {
			cmd.Env = append(cmd.Env, access.JupyterTokenEnv+"=")
		}, "trainenv: jupyter: JUPYTER_TOKEN is empty"},
		{"no passwd entry for the uid in a read-only image", func(_ *exec.Cmd, p *pod) {
			p.paths.Passwd = readOnlyPasswd
		}, "trainenv: image lacks user: SSH is enabled but the image has no user with uid " + strconv.Itoa(int(p.user.UID))},
		{"no sshd in the image", func(_ *exec.Cmd, p *pod) {
			p.paths.SSHD = filepath.Join(p.base, "no-sshd")
		}, "trainenv: image lacks sshd: SSH is enabled but the image has no sshd (looked for " + filepath.Join(p.base, "no-sshd") + ")"},
		{"no sshd, no user, no Jupyter: all named at once", func(cmd *exec.Cmd, p *pod) {
			p.paths.SSHD, p.paths.Passwd = filepath.Join(p.base, "no-sshd"), readOnlyPasswd
			cmd.Env = append(cmd.Env, "PATH="+p.base)
		}, "trainenv: image lacks sshd,user,jupyter: "},
		{"no authorized_keys mounted", func(_ *exec.Cmd, p *pod) {
			p.paths.AuthorizedKeys = filepath.Join(p.base, "missing")
		}, "trainenv: ssh: authorized keys"},
		{"root", func(cmd *exec.Cmd, _ *pod) {
			if os.Geteuid() == 0 {
				cmd.SysProcAttr = nil
			} else {
				cmd.Path = "/bin/false" // cannot become root: nothing to check
			}
		}, "trainenv: the container runs as root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := *p
			cmd := q.command(conf)
			tc.edit(cmd, &q)
			cmd = rebuild(q, cmd)
			out, code := rt.Run(cmd)
			if cmd.Path == "/bin/false" {
				return
			}
			if code != 1 || !strings.Contains(readFile(t, q.paths.TerminationLog), tc.want) {
				t.Errorf("exit %d, termination message %q, want 1 and %q; output:\n%s", code, readFile(t, q.paths.TerminationLog), tc.want, out)
			}
			kubeletTerminationLog(t, q.paths.TerminationLog, q.user)
		})
	}
}

// rebuild applies edited paths to a prepared command (the paths travel in its environment).
func rebuild(p pod, cmd *exec.Cmd) *exec.Cmd {
	paths, _ := json.Marshal(p.paths)
	for i, kv := range cmd.Env {
		if strings.HasPrefix(kv, entrypointSpecEnv+"=") {
			cmd.Env[i] = entrypointSpecEnv + "=" + string(paths)
		}
	}
	return cmd
}

// Without SSH and Jupyter the entrypoint runs the image's own command and passes its exit
// status on; idle shutdown has nothing to watch and never stops it.
func TestEntrypointRunsTheImagesCommand(t *testing.T) {
	p := safePod(t)
	cmd := p.command(access.Config{Command: []string{"sh", "-c", "sleep 3; exit 7"}, IdleSuspendAfterSeconds: 1})
	out, code := rt.Run(cmd)
	if code != 7 {
		t.Errorf("exit %d, want the command's 7; output:\n%s", code, out)
	}
	if got, want := readFile(t, p.paths.TerminationLog), "trainenv: command exited with status 7"; got != want {
		t.Errorf("termination message %q, want %q", got, want)
	}
}
