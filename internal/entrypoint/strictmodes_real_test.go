package entrypoint

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/trainenv/trainenv/internal/access"
	rt "github.com/trainenv/trainenv/internal/testutil/realtools"
)

// The entrypoint's StrictModes check predicts what the real sshd does with StrictModes
// on: accept the key in a safe directory, refuse it under a world-writable one (as an
// emptyDir is). That is why the entrypoint may switch StrictModes off there.
func TestStrictModesAgreesWithSSHD(t *testing.T) {
	rt.Require(t, rt.SSHDPath, "ssh")
	u := rt.NonRoot(t)
	worldWritableParent := func(t *testing.T) string {
		base, err := os.MkdirTemp("/tmp", "trainenv-strict-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(base) })
		u.Own(t, base)
		return filepath.Join(base, "ssh")
	}
	for _, tc := range []struct {
		name string
		dir  func(t *testing.T) string
		ok   bool
	}{
		{"safe directory", func(t *testing.T) string { return filepath.Join(rt.SafeDir(t, u), "ssh") }, true},
		{"under /tmp", worldWritableParent, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := rt.StartSSHD(t, rt.SSHDOptions{
				Config: access.SSHConfig{ClientAliveIntervalSeconds: 30, ClientAliveCountMax: 3},
				Dir:    tc.dir(t), // DefaultSSHDRuntime: StrictModes yes
			})
			ok, why := strictModesOK(filepath.Join(filepath.Dir(s.Config), access.AuthorizedKeysFile), int(u.UID), "/nonexistent")
			out, code := s.Login(rt.KnownHosts(t, "env", s.HostKeys), "env", u.Name, "true").Run()
			if ok != tc.ok || (code == 0) != ok {
				t.Fatalf("strictModesOK = %v (%s), sshd login exit %d (%s); want both %v", ok, why, code, out, tc.ok)
			}
		})
	}
}
