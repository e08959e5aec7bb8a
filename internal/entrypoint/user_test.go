package entrypoint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const passwd = `root:x:0:0:root:/root:/bin/bash
# a comment
jovyan:x:1000:100::/home/jovyan:/bin/bash
`

func writePasswd(t *testing.T, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(path, []byte(passwd), mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestEnsureUserFindsTheImagesUser(t *testing.T) {
	e, err := ensureUser(writePasswd(t, 0o444), 1000, 100, "/workspace")
	if err != nil {
		t.Fatal(err)
	}
	if e.Name != "jovyan" || e.Home != "/home/jovyan" {
		t.Errorf("got %+v, want jovyan's entry", e)
	}
}

func TestEnsureUserAddsAMissingUserWhereItCan(t *testing.T) {
	path := writePasswd(t, 0o664)
	e, err := ensureUser(path, 1001, 0, "/workspace")
	if err != nil {
		t.Fatal(err)
	}
	again, err := ensureUser(path, 1001, 0, "/elsewhere")
	if err != nil || again.Name != e.Name || again.Home != "/workspace" {
		t.Errorf("second start: %+v %v, want the entry added by the first (%+v)", again, err, e)
	}
	entries, _ := readPasswd(path)
	if len(entries) != 3 || entries[2].Name != "trainenv" || entries[2].UID != 1001 {
		t.Errorf("passwd now %+v, want one trainenv entry for uid 1001 appended", entries)
	}
}

// The read-only image case runs as the non-root user in TestEntrypointRealNeedsAUser.

func TestEnsureUserUnreadablePasswd(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "passwd.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "passwd")
	if err := os.Symlink(filepath.Join(dir, "passwd.d"), path); err != nil {
		t.Fatal(err)
	}
	if _, err := ensureUser(path, 1001, 0, "/"); err == nil {
		t.Error("an unreadable passwd was accepted")
	}
}

// strictModesOK agrees with sshd's rule: every directory up to / (or the home) owned by
// root or the user and not writable by group or others. The real sshd is asked in
// TestStrictModesAgreesWithSSHD.
func TestStrictModesOK(t *testing.T) {
	uid := os.Getuid()
	if ok, why := strictModesOK("/tmp", uid, "/nonexistent"); ok {
		t.Errorf("/tmp (mode 1777) passed")
	} else if !strings.Contains(why, "/tmp") {
		t.Errorf("why = %q, want it to name /tmp", why)
	}
	if ok, why := strictModesOK("/usr/bin", uid, ""); !ok {
		t.Errorf("/usr/bin failed: %s", why)
	}
	// Group-writable: refused as sshd does.
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o770); err != nil {
		t.Fatal(err)
	}
	if ok, _ := strictModesOK(dir, uid, ""); ok {
		t.Error("a group-writable directory passed")
	}
}
