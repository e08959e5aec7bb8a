package entrypoint

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rt "github.com/trainenv/trainenv/internal/testutil/realtools"
)

// secretVolume writes file name of a Secret volume at dir the way the kubelet's atomic
// writer does: the file is a symlink through ..data, which points to a directory of this
// version and is swapped by rename; the old version is removed afterwards.
func secretVolume(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	version, err := os.MkdirTemp(dir, "..2026_11_23_12_00_00.")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(version, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(version, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(version), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, name)); os.IsNotExist(err) {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestKeySyncFollowsTheSecretVolume(t *testing.T) {
	dir := t.TempDir()
	volume, private := filepath.Join(dir, "secret"), filepath.Join(dir, "run", "authorized_keys")
	if err := os.MkdirAll(filepath.Dir(private), 0o700); err != nil {
		t.Fatal(err)
	}
	a, b := rt.NewClientKey(t), rt.NewClientKey(t)
	secretVolume(t, volume, "authorized_keys", a.AuthorizedKey)
	log := &rt.Buffer{}
	k := KeySync{From: filepath.Join(volume, "authorized_keys"), To: private, Log: log}

	sync := func(wantChanged bool, want []byte) {
		t.Helper()
		changed, err := k.Sync()
		if err != nil || changed != wantChanged {
			t.Fatalf("Sync: changed %v, %v; want changed %v", changed, err, wantChanged)
		}
		got, err := os.ReadFile(private)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("private copy %q (%v), want %q", got, err, want)
		}
		if st, _ := os.Lstat(private); !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 {
			t.Errorf("private copy: mode %v, want a regular file 0600", st.Mode())
		}
	}
	sync(true, a.AuthorizedKey)
	sync(false, a.AuthorizedKey)

	// A key added, then the first one revoked.
	both := append(append([]byte{}, a.AuthorizedKey...), b.AuthorizedKey...)
	secretVolume(t, volume, "authorized_keys", both)
	sync(true, both)
	if !strings.Contains(log.String(), "2 key(s) "+a.Fingerprint+" "+b.Fingerprint) {
		t.Errorf("the log does not name the keys now in effect:\n%s", log)
	}
	secretVolume(t, volume, "authorized_keys", b.AuthorizedKey)
	sync(true, b.AuthorizedKey)

	// Emptied: followed (every key revoked), never kept open.
	secretVolume(t, volume, "authorized_keys", nil)
	sync(true, []byte{})

	// The volume unreadable: the last copy stays.
	secretVolume(t, volume, "authorized_keys", b.AuthorizedKey)
	sync(true, b.AuthorizedKey)
	if err := os.Remove(filepath.Join(volume, "..data")); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Sync(); err == nil {
		t.Error("Sync of a missing file: no error")
	}
	if got, _ := os.ReadFile(private); !bytes.Equal(got, b.AuthorizedKey) {
		t.Errorf("private copy %q after a failed read, want the last one", got)
	}
}

func TestKeySyncRunsUntilCancelled(t *testing.T) {
	dir := t.TempDir()
	from, to := filepath.Join(dir, "from"), filepath.Join(dir, "to")
	if err := os.WriteFile(from, []byte("one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); KeySync{From: from, To: to, Every: 10 * time.Millisecond}.Run(ctx) }()
	waitFor(t, "the first copy", func() bool { got, _ := os.ReadFile(to); return string(got) == "one\n" })
	if err := os.WriteFile(from, []byte("two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second copy", func() bool { got, _ := os.ReadFile(to); return string(got) == "two\n" })
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}
