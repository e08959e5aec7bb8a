package entrypoint

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trainenv/trainenv/internal/access"
)

// elfFor is the header of a program built for machine: all debug/elf (and the check) reads.
func elfFor(t *testing.T, machine elf.Machine) []byte {
	t.Helper()
	h := elf.Header64{Type: uint16(elf.ET_EXEC), Machine: uint16(machine), Version: uint32(elf.EV_CURRENT), Ehsize: 64, Phentsize: 56, Shentsize: 64}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, h); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// imageRoot lays out an image's root file system: path → content (mode 0755 under bin
// directories, 0644 elsewhere; passwd read-only as in an image run by a non-root user).
func imageRoot(t *testing.T, files map[string][]byte) string {
	t.Helper()
	root := t.TempDir()
	for path, content := range files {
		full := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.Contains(path, "bin/") {
			mode = 0o755
		}
		if err := os.WriteFile(full, content, mode); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const withJovyan = "root:x:0:0:root:/root:/bin/bash\njovyan:x:1000:1000::/home/jovyan:/bin/bash\n"
const withoutUID1000 = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"

// The reference image's layout, less or changed by what each case says.
func referenceImage(t *testing.T, edit func(map[string][]byte)) map[string][]byte {
	amd64 := elfFor(t, elf.EM_X86_64)
	files := map[string][]byte{
		"usr/sbin/sshd":          amd64,
		"etc/passwd":             []byte(withJovyan),
		"usr/bin/python3":        amd64,
		"usr/bin/jupyter-server": []byte("#!/usr/bin/python3\nimport sys\n"),
	}
	if edit != nil {
		edit(files)
	}
	return files
}

func TestImageCheck(t *testing.T) {
	arm64 := elfFor(t, elf.EM_AARCH64)
	both := access.Config{SSH: &access.SSHConfig{}, Jupyter: &access.JupyterConfig{}}
	cases := []struct {
		name     string
		edit     func(map[string][]byte)
		cfg      access.Config
		writable bool // the passwd file can be extended
		lacks    []access.ImageLack
		details  []string // each in the detail, in order
	}{
		{name: "the reference image has everything", cfg: both},
		{name: "no sshd with SSH on", edit: func(f map[string][]byte) { delete(f, "usr/sbin/sshd") }, cfg: both,
			lacks: []access.ImageLack{access.LackSSHD}, details: []string{"SSH is enabled but the image has no sshd (looked for /usr/sbin/sshd, /usr/local/sbin/sshd, /sbin/sshd)", "openssh-server"}},
		{name: "sshd in /usr/local/sbin", edit: func(f map[string][]byte) { f["usr/local/sbin/sshd"] = f["usr/sbin/sshd"]; delete(f, "usr/sbin/sshd") }, cfg: both},
		{name: "no sshd, SSH off", edit: func(f map[string][]byte) { delete(f, "usr/sbin/sshd") }, cfg: access.Config{Jupyter: &access.JupyterConfig{}}},
		{name: "no uid 1000, passwd read-only", edit: func(f map[string][]byte) { f["etc/passwd"] = []byte(withoutUID1000) }, cfg: both,
			lacks: []access.ImageLack{access.LackUser}, details: []string{"no user with uid 1000 in", "useradd --uid 1000"}},
		{name: "no uid 1000, passwd writable: the entrypoint adds it", edit: func(f map[string][]byte) { f["etc/passwd"] = []byte(withoutUID1000) }, cfg: both, writable: true},
		{name: "no uid 1000, SSH off", edit: func(f map[string][]byte) { f["etc/passwd"] = []byte(withoutUID1000) }, cfg: access.Config{Jupyter: &access.JupyterConfig{}}},
		{name: "no passwd at all", edit: func(f map[string][]byte) { delete(f, "etc/passwd") }, cfg: both,
			lacks: []access.ImageLack{access.LackUser}, details: []string{"cannot be read"}},
		{name: "no Jupyter server", edit: func(f map[string][]byte) { delete(f, "usr/bin/jupyter-server") }, cfg: both,
			lacks: []access.ImageLack{access.LackJupyter}, details: []string{"no jupyter-lab, jupyter-server or jupyter on its PATH (/usr/local/bin:/usr/bin:/bin)"}},
		{name: "jupyter (the old launcher) counts", edit: func(f map[string][]byte) {
			f["usr/local/bin/jupyter"] = []byte("#!/usr/bin/env python3\n")
			delete(f, "usr/bin/jupyter-server")
		}, cfg: both},
		{name: "no Jupyter server, Jupyter off", edit: func(f map[string][]byte) { delete(f, "usr/bin/jupyter-server") }, cfg: access.Config{SSH: &access.SSHConfig{}}},
		{name: "a Jupyter server without its Python", edit: func(f map[string][]byte) { delete(f, "usr/bin/python3") }, cfg: both,
			lacks: []access.ImageLack{access.LackJupyter}, details: []string{"the image's /usr/bin/jupyter-server runs /usr/bin/python3, which the image does not have: install Python 3"}},
		{name: "a Jupyter server through env without python3", edit: func(f map[string][]byte) {
			f["usr/bin/jupyter-server"] = []byte("#!/usr/bin/env python3\n")
			delete(f, "usr/bin/python3")
		}, cfg: both, lacks: []access.ImageLack{access.LackJupyter}, details: []string{"runs python3 (looked up on PATH by /usr/bin/env), which the image does not have"}},
		{name: "nothing at all (a static image): everything named at once", edit: func(f map[string][]byte) { clear(f); f["podprobe"] = nil }, cfg: both,
			lacks: []access.ImageLack{access.LackSSHD, access.LackUser, access.LackJupyter}},
		{name: "programs for another CPU", edit: func(f map[string][]byte) { f["usr/sbin/sshd"], f["usr/bin/python3"] = arm64, arm64 }, cfg: both,
			lacks:   []access.ImageLack{access.LackPlatform},
			details: []string{"the image does not match the node's platform (linux/amd64): /usr/sbin/sshd is built for linux/arm64, /usr/bin/python3 is built for linux/arm64"}},
		{name: "interpreter through env, for another CPU", edit: func(f map[string][]byte) {
			f["usr/bin/jupyter-server"] = []byte("#!/usr/bin/env python3\n")
			f["usr/bin/python3"] = arm64
		}, cfg: access.Config{Jupyter: &access.JupyterConfig{}},
			lacks: []access.ImageLack{access.LackPlatform}, details: []string{"/usr/bin/python3 is built for linux/arm64"}},
		{name: "another CPU and no user: the platform first", edit: func(f map[string][]byte) { f["usr/sbin/sshd"], f["etc/passwd"] = arm64, []byte(withoutUID1000) }, cfg: both,
			lacks: []access.ImageLack{access.LackPlatform, access.LackUser}},
		{name: "nothing asked, nothing checked", edit: func(f map[string][]byte) { clear(f) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := imageRoot(t, referenceImage(t, tc.edit))
			c := imageCheck{Root: root, Passwd: filepath.Join(root, "etc/passwd"), PATH: "/usr/local/bin:/usr/bin:/bin", UID: 1000, Arch: "amd64",
				canAppend: func(string) bool { return tc.writable }}
			err := c.run(tc.cfg)
			if tc.lacks == nil {
				if err != nil {
					t.Fatalf("the image lacks nothing, but: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; want the image to lack %v", tc.lacks)
			}
			lacks, detail, ok := access.ParseImageLacks(err.Error())
			if !ok || !slices.Equal(lacks, tc.lacks) {
				t.Fatalf("termination message %q: lacks %v (ok %v), want %v", err, lacks, ok, tc.lacks)
			}
			if strings.Contains(detail, root) {
				t.Errorf("the detail names the test's root %s: %q", root, detail)
			}
			at := 0
			for _, want := range tc.details {
				i := strings.Index(detail[at:], want)
				if i < 0 {
					t.Fatalf("detail %q lacks %q (in order)", detail, want)
				}
				at += i + len(want)
			}
		})
	}
}

// In the pod, the check looks at / with the container's PATH and the node's architecture.
func TestPodImageCheckOfThisMachine(t *testing.T) {
	c := podImageCheck(Paths{Passwd: "/etc/passwd"}, 0)
	if c.Root != "/" || c.Arch == "" || c.PATH != os.Getenv("PATH") {
		t.Fatalf("podImageCheck = %+v", c)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if detail := c.foreignPrograms([]string{self}); detail != "" {
		t.Errorf("this test binary is foreign to this machine: %s", detail)
	}
}
