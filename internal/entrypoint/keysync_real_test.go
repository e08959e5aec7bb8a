package entrypoint

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trainenv/trainenv/internal/access"
	rt "github.com/trainenv/trainenv/internal/testutil/realtools"
)

// A key added to the authorized_keys Secret logs in to the running sshd, and a removed one
// is refused, with no restart of the entrypoint or sshd: a session open meanwhile (the
// user's training) goes on. The Secret volume is laid out and updated as the kubelet does.
func TestEntrypointRealAuthorizedKeysChangeWithoutRestart(t *testing.T) {
	p := safePod(t)
	volume := filepath.Dir(p.paths.AuthorizedKeys)
	if err := os.Remove(p.paths.AuthorizedKeys); err != nil {
		t.Fatal(err)
	}
	secretVolume(t, volume, access.AuthorizedKeysFile, p.client.AuthorizedKey)
	p.paths.KeySyncEvery = 200 * time.Millisecond
	c := startChild(t, p.command(access.Config{SSH: conf.SSH}))
	waitFor(t, "sshd", func() bool {
		c.running(t)
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p.paths.SSHPort), time.Second)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	pidFile := filepath.Join(p.paths.RuntimeDir, "ssh", "sshd.pid")
	// sshd writes its pid file after it starts listening.
	waitFor(t, "sshd.pid", func() bool { _, err := os.Stat(pidFile); return err == nil })
	sshdPid := readFile(t, pidFile)
	known := rt.KnownHosts(t, "env", p.hostKeys)
	login := func(key rt.ClientKey, command string) (string, int) {
		return rt.Login{Port: p.paths.SSHPort, Key: key.Path, KnownHosts: known, Alias: "env", User: p.user.Name, Command: command}.Run()
	}
	added := rt.NewClientKey(t)
	if out, code := login(added, "true"); code != 255 {
		t.Fatalf("a key not in the Secret logged in (exit %d): %s", code, out)
	}

	// A session of the old key runs across the change.
	started := filepath.Join(p.base, "session-started")
	session := make(chan string, 1)
	go func() {
		out, code := login(p.client, "touch "+started+"; sleep 3; echo still running")
		session <- fmt.Sprintf("%d %s", code, out)
	}()
	waitFor(t, "the session", exists(started))

	// The Secret now holds the new key only.
	secretVolume(t, volume, access.AuthorizedKeysFile, added.AuthorizedKey)
	waitFor(t, "the added key to log in", func() bool { _, code := login(added, "true"); return code == 0 })
	if out, code := login(p.client, "true"); code != 255 {
		t.Errorf("the removed key still logs in (exit %d): %s", code, out)
	}
	if got := <-session; !strings.HasPrefix(got, "0 ") || !strings.Contains(got, "still running") {
		t.Errorf("the session open during the change: %s", got)
	}
	c.running(t)
	if again := readFile(t, filepath.Join(p.paths.RuntimeDir, "ssh", "sshd.pid")); again != sshdPid {
		t.Errorf("sshd was restarted (pid %s, then %s)", sshdPid, again)
	}
	st, err := os.Stat(filepath.Join(p.paths.RuntimeDir, "ssh", access.AuthorizedKeysFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("sshd's copy of authorized_keys: %v, %v; want mode 0600", st.Mode(), err)
	}
	if !strings.Contains(c.out.String(), "authorized_keys changed, now in effect for new logins: 1 key(s) "+added.Fingerprint) {
		t.Errorf("the entrypoint's log does not name the new key:\n%s", c.out)
	}
}
