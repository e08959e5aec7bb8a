package entrypoint

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestInstallCopiesTheTools(t *testing.T) {
	src := t.TempDir()
	self := filepath.Join(src, "trainenv-entrypoint")
	writeExec(t, self, "entrypoint binary")
	writeExec(t, filepath.Join(src, PreflightName), "preflight binary")
	dst := filepath.Join(t.TempDir(), "bin")
	if err := Install(self, dst, io.Discard); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"entrypoint": "entrypoint binary", "preflight": "preflight binary"} {
		path := filepath.Join(dst, name)
		if got := readFile(t, path); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
		if st, _ := os.Stat(path); st.Mode().Perm() != 0o755 {
			t.Errorf("%s has mode %v, want 0755", name, st.Mode().Perm())
		}
	}
	// A restarted init container installs again over the first copy.
	writeExec(t, self, "newer entrypoint")
	if err := Install(self, dst, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dst, "entrypoint")); got != "newer entrypoint" {
		t.Errorf("reinstall left %q", got)
	}
	if left, _ := filepath.Glob(filepath.Join(dst, ".install-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestInstallWithoutPreflight(t *testing.T) {
	self := filepath.Join(t.TempDir(), "trainenv-entrypoint")
	writeExec(t, self, "entrypoint binary")
	dst := t.TempDir()
	if err := Install(self, dst, io.Discard); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(dst, "preflight"))() {
		t.Error("a preflight appeared from nowhere")
	}
}

// `entrypoint install DIR`, as the init container runs it, copies the running binary.
func TestMainInstall(t *testing.T) {
	dst := t.TempDir()
	if code := Main([]string{"install", dst}, io.Discard); code != 0 {
		t.Fatalf("install: exit %d", code)
	}
	self, _ := os.Executable()
	want, _ := os.Stat(self)
	got, err := os.Stat(filepath.Join(dst, "entrypoint"))
	if err != nil || got.Size() != want.Size() {
		t.Errorf("installed %v (%v), want a copy of %s (%d bytes)", got, err, self, want.Size())
	}
}

func TestMainUsage(t *testing.T) {
	if code := Main([]string{"bogus"}, io.Discard); code != 2 {
		t.Errorf("exit %d for a bad command line, want 2", code)
	}
}

func writeExec(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}
