package entrypoint

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// passwdEntry is one line of /etc/passwd.
type passwdEntry struct {
	Name     string
	UID, GID int
	Home     string
	Shell    string
}

func (e passwdEntry) line() string {
	return fmt.Sprintf("%s:x:%d:%d:trainenv user:%s:%s", e.Name, e.UID, e.GID, e.Home, e.Shell)
}

// readPasswd parses a passwd file (a static binary has no NSS: files are all there is).
func readPasswd(path string) ([]passwdEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var entries []passwdEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.Split(sc.Text(), ":")
		if len(p) != 7 || strings.HasPrefix(p[0], "#") {
			continue
		}
		uid, err1 := strconv.Atoi(p[2])
		gid, err2 := strconv.Atoi(p[3])
		if err1 != nil || err2 != nil {
			continue
		}
		entries = append(entries, passwdEntry{Name: p[0], UID: uid, GID: gid, Home: p[5], Shell: p[6]})
	}
	return entries, sc.Err()
}

// ensureUser returns the passwd entry of uid. sshd logs in only users it can look up, so
// an image without an entry for the pod's uid gets one appended where /etc/passwd is
// writable (images built for arbitrary uids make it group-writable for this); otherwise
// the error says how to fix the image.
func ensureUser(passwdPath string, uid, gid int, home string) (passwdEntry, error) {
	entries, err := readPasswd(passwdPath)
	if err != nil {
		return passwdEntry{}, fmt.Errorf("reading %s: %w", passwdPath, err)
	}
	names := map[string]bool{}
	for _, e := range entries {
		if e.UID == uid {
			return e, nil
		}
		names[e.Name] = true
	}
	e := passwdEntry{Name: "trainenv", UID: uid, GID: gid, Home: home, Shell: "/bin/sh"}
	if names[e.Name] {
		e.Name = fmt.Sprintf("trainenv-%d", uid)
	}
	if !filepath.IsAbs(e.Home) {
		e.Home = "/"
	}
	if _, err := os.Stat("/bin/bash"); err == nil {
		e.Shell = "/bin/bash"
	}
	f, err := os.OpenFile(passwdPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return passwdEntry{}, fmt.Errorf("the image has no user with uid %d in %s, which sshd needs to log anyone in, "+
			"and the file is not writable to add one: add a user with that uid to the image "+
			"(for example: useradd --uid %d --create-home user)", uid, passwdPath, uid)
	}
	_, err = fmt.Fprintln(f, e.line())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return passwdEntry{}, fmt.Errorf("adding uid %d to %s: %w", uid, passwdPath, err)
	}
	return e, nil
}

// strictModesOK reports whether sshd's StrictModes accepts path: the file and every
// directory above it, up to the user's home or /, owned by root or uid and writable by
// no one else. If not, it names the first offender. An emptyDir (mode 0777) anywhere
// above fails it: then StrictModes can only refuse every key.
func strictModesOK(path string, uid int, home string) (bool, string) {
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return false, err.Error()
	}
	for p := resolved; ; p = filepath.Dir(p) {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			return false, err.Error()
		}
		if (st.Uid != 0 && int(st.Uid) != uid) || st.Mode&0o022 != 0 {
			return false, fmt.Sprintf("%s (owner %d, mode %04o)", p, st.Uid, st.Mode&0o7777)
		}
		if p == "/" || (p != resolved && p == home) {
			return true, ""
		}
	}
}
