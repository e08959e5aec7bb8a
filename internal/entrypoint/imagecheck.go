package entrypoint

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/trainenv/trainenv/internal/access"
)

// imageCheck looks, before anything is prepared, for what the spec turned on and the image
// must bring: sshd and a user for the pod's uid (SSH), a Jupyter server (Jupyter), programs
// built for the node's CPU. Every check runs, so one start of the container names everything
// that is missing; the termination message (access.ImageLacksMessage) lets the operator
// give each a condition reason instead of a bare crash loop. The checks look up the same
// places prepareSSH and prepareJupyter use.
//
// Why here and not in the preflight init container, which also runs before the user's
// processes: the preflight runs only in GPU environments and is a glibc program (it loads
// NVML), so it cannot start in the very images worth diagnosing (a static or musl image);
// the entrypoint is static, runs in every environment with SSH or Jupyter, and is what
// would use sshd, the passwd entry and the Jupyter server, so check and use cannot drift.
// It also fixes what it can (appending the uid to a writable /etc/passwd), which only the
// container that runs sshd can do. Either way the kubelet restarts it with back-off; failing
// in the main container costs nothing more than failing in an init container.
type imageCheck struct {
	// Root is the image's root file system ("/" in the pod; a directory in tests).
	Root string
	// Passwd is the passwd file (a path on this machine, already under Root).
	Passwd string
	// SSHD is a configured sshd (Paths.SSHD, already under Root); "" looks in the usual places.
	SSHD string
	// PATH is the container's search path for the Jupyter server.
	PATH string
	// UID is the pod's user.
	UID int
	// Arch is the node's CPU architecture, as runtime.GOARCH names it.
	Arch string
	// canAppend says whether the passwd file can be extended (ensureUser adds the user
	// then); nil: opened for appending.
	canAppend func(path string) bool
}

// podImageCheck is the check of the pod's own image.
func podImageCheck(p Paths, uid int) imageCheck {
	return imageCheck{Root: "/", Passwd: p.Passwd, SSHD: p.SSHD, PATH: os.Getenv("PATH"), UID: uid, Arch: runtime.GOARCH}
}

// errImageLacks is the error of an image that lacks something: its text is the whole
// termination message, in access.ImageLacksMessage's format.
type errImageLacks struct{ message string }

func (e errImageLacks) Error() string { return e.message }

// run returns nil when the image has all it needs for cfg, else an errImageLacks.
func (c imageCheck) run(cfg access.Config) error {
	var lacks []access.ImageLack
	var details []string
	add := func(l access.ImageLack, detail string) {
		lacks = append(lacks, l)
		details = append(details, detail)
	}
	var programs []string // what trainenv will run from the image, for the platform check
	if cfg.SSH != nil {
		sshd, err := findSSHDIn(c.Root, c.SSHD)
		if err != nil {
			add(access.LackSSHD, err.Error())
		} else {
			programs = append(programs, sshd)
		}
		if detail := c.userMissing(); detail != "" {
			add(access.LackUser, detail)
		}
	}
	if cfg.Jupyter != nil {
		if server := c.lookPath("jupyter-lab", "jupyter-server", "jupyter"); server == "" {
			add(access.LackJupyter, "Jupyter is enabled but the image has no jupyter-lab, jupyter-server or jupyter on its PATH ("+c.PATH+
				"): install JupyterLab (or jupyter_server) in the image, or set spec.jupyter.enabled to false")
		} else if program, missing := c.interpreter(server); missing != "" {
			add(access.LackJupyter, fmt.Sprintf("Jupyter is enabled but the image's %s runs %s, which the image does not have: install Python 3 (python3) with the Jupyter server in the image",
				c.inImage(server), missing))
		} else {
			programs = append(programs, program)
		}
	}
	if detail := c.foreignPrograms(programs); detail != "" {
		lacks = append([]access.ImageLack{access.LackPlatform}, lacks...)
		details = append([]string{detail}, details...)
	}
	if len(lacks) == 0 {
		return nil
	}
	return errImageLacks{access.ImageLacksMessage(lacks, details)}
}

// userMissing says why sshd could not log the pod's user in, or "" when /etc/passwd has the
// uid or can take it (ensureUser appends it).
func (c imageCheck) userMissing() string {
	entries, err := readPasswd(c.Passwd)
	if err != nil {
		return fmt.Sprintf("SSH is enabled but %s cannot be read (%s): sshd logs in only users it can look up; add a user with uid %d to the image (for example: useradd --uid %d --create-home user)",
			c.inImage(c.Passwd), c.inImage(err.Error()), c.UID, c.UID)
	}
	for _, e := range entries {
		if e.UID == c.UID {
			return ""
		}
	}
	canAppend := c.canAppend
	if canAppend == nil {
		canAppend = appendable
	}
	if canAppend(c.Passwd) {
		return ""
	}
	return fmt.Sprintf("SSH is enabled but the image has no user with uid %d in %s, which sshd needs to log anyone in, "+
		"and the file is not writable to add one: add a user with that uid to the image "+
		"(for example: useradd --uid %d --create-home user)", c.UID, c.inImage(c.Passwd), c.UID)
}

// inImage writes the paths in s as the image sees them (without Root).
func (c imageCheck) inImage(s string) string {
	if root := strings.TrimSuffix(c.Root, "/"); root != "" {
		return strings.ReplaceAll(s, root, "")
	}
	return s
}

// appendable tells whether path opens for appending; nothing is written.
func appendable(path string) bool {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return false
	}
	_ = f.Close()
	return true
}

// lookPath returns the first of names found as an executable file in a directory of PATH
// under Root, as a path on this machine; "" when none is.
func (c imageCheck) lookPath(names ...string) string {
	for _, name := range names {
		for _, dir := range filepath.SplitList(c.PATH) {
			if !filepath.IsAbs(dir) {
				continue // exec.LookPath refuses relative PATH entries too
			}
			if p := filepath.Join(c.Root, dir, name); executable(p) {
				return p
			}
		}
	}
	return ""
}

func executable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// interpreter is the program that really runs for path: a script's interpreter (#!, also
// through /usr/bin/env), else path itself; missing names an interpreter the image lacks.
func (c imageCheck) interpreter(path string) (program, missing string) {
	f, err := os.Open(path)
	if err != nil {
		return path, ""
	}
	defer func() { _ = f.Close() }() // read-only: nothing to lose
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return path, ""
	}
	rest, ok := strings.CutPrefix(line, "#!")
	fields := strings.Fields(rest)
	if !ok || len(fields) == 0 {
		return path, ""
	}
	if filepath.Base(fields[0]) == "env" && len(fields) > 1 && !strings.HasPrefix(fields[1], "-") {
		if p := c.lookPath(fields[1]); p != "" {
			return p, ""
		}
		return "", fields[1] + " (looked up on PATH by " + fields[0] + ")"
	}
	if p := filepath.Join(c.Root, fields[0]); executable(p) {
		return p, ""
	}
	return "", fields[0]
}

// foreignPrograms names the programs built for another CPU than the node's, or "".
func (c imageCheck) foreignPrograms(paths []string) string {
	want, known := elfMachines[c.Arch]
	if !known {
		return ""
	}
	var foreign []string
	for _, p := range paths {
		m, err := elfMachine(p)
		if err != nil || m == want {
			continue // not ELF (a script whose interpreter was not found): nothing to compare
		}
		foreign = append(foreign, fmt.Sprintf("%s is built for %s", c.inImage(p), machineName(m)))
	}
	if len(foreign) == 0 {
		return ""
	}
	return fmt.Sprintf("the image does not match the node's platform (linux/%s): %s; use an image built for linux/%s (a multi-platform image, with spec.platform set to the nodes' platform)",
		c.Arch, strings.Join(foreign, ", "), c.Arch)
}

// elfMachines maps runtime.GOARCH to the ELF machine of its programs.
var elfMachines = map[string]elf.Machine{
	"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "386": elf.EM_386, "arm": elf.EM_ARM,
	"ppc64le": elf.EM_PPC64, "s390x": elf.EM_S390, "riscv64": elf.EM_RISCV,
}

func machineName(m elf.Machine) string {
	for arch, em := range elfMachines {
		if em == m {
			return "linux/" + arch
		}
	}
	return m.String()
}

func elfMachine(path string) (elf.Machine, error) {
	f, err := elf.Open(path)
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }() // read-only: nothing to lose
	if f.Machine == elf.EM_NONE {
		return 0, errors.New("no machine")
	}
	return f.Machine, nil
}
