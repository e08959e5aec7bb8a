package entrypoint

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// PreflightName is the preflight's file name next to the entrypoint in the operator's image.
const PreflightName = "trainenv-preflight"

// Install copies the entrypoint (self, the running binary) and, when it lies next to it,
// the preflight into dir as "entrypoint" and "preflight". The init container runs this to
// put trainenv's tools into the pod without any in the user's image.
func Install(self, dir string, log io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := copyExecutable(self, filepath.Join(dir, "entrypoint")); err != nil {
		return fmt.Errorf("installing the entrypoint: %w", err)
	}
	fmt.Fprintf(log, "trainenv-entrypoint: installed %s as %s\n", self, filepath.Join(dir, "entrypoint"))
	preflight := filepath.Join(filepath.Dir(self), PreflightName)
	switch _, err := os.Stat(preflight); {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	}
	if err := copyExecutable(preflight, filepath.Join(dir, "preflight")); err != nil {
		return fmt.Errorf("installing the preflight: %w", err)
	}
	fmt.Fprintf(log, "trainenv-entrypoint: installed %s as %s\n", preflight, filepath.Join(dir, "preflight"))
	return nil
}

// copyExecutable writes a copy next to the target and renames it into place, so a
// restarted init container never leaves a half-written binary behind.
func copyExecutable(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp, err := os.CreateTemp(filepath.Dir(to), ".install-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, src); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), to)
}

// Main dispatches the entrypoint's command line and returns its exit code.
func Main(args []string, stderr io.Writer) int {
	switch {
	case len(args) == 0 || (len(args) == 1 && args[0] == "run"):
		return Run(DefaultPaths(), stderr)
	case len(args) == 2 && args[0] == "install":
		self, err := os.Executable()
		if err == nil {
			err = Install(self, args[1], stderr)
		}
		if err != nil {
			fmt.Fprintf(stderr, "trainenv-entrypoint: %v\n", err)
			return 1
		}
		return 0
	default:
		fmt.Fprintln(stderr, "usage: entrypoint [run]      supervise sshd and Jupyter (PID 1 of the environment)\n"+
			"       entrypoint install DIR   copy the entrypoint and the preflight into DIR")
		return 2
	}
}
