package main

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// debPackage is an installed Debian package of the building machine whose files go into an
// image (glibc for the node agent, the CA certificates for every image).
type debPackage struct {
	Name, Version, Arch, Source string
	files                       []string
}

func hostPackage(name string) (debPackage, error) {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version} ${Architecture}", name).Output()
	if err != nil {
		return debPackage{}, fmt.Errorf("the Debian package %s is not installed here (dpkg-query: %v); "+
			"the images take it from the building machine", name, err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		return debPackage{}, fmt.Errorf("dpkg-query %s: unexpected output %q", name, out)
	}
	list, err := exec.Command("dpkg-query", "-L", name).Output()
	if err != nil {
		return debPackage{}, fmt.Errorf("dpkg-query -L %s: %w", name, err)
	}
	return debPackage{Name: name, Version: f[0], Arch: f[1], files: strings.Fields(string(list))}, nil
}

// caCertificates is Debian's CA bundle as ca-certificates builds it from its own certificate
// files (all of them, sorted), not the machine's /etc/ssl/certs, which local trust changes.
func caCertificates() (debPackage, []entry, error) {
	pkg, err := hostPackage("ca-certificates")
	if err != nil {
		return pkg, nil, err
	}
	var certs []string
	for _, f := range pkg.files {
		if strings.HasPrefix(f, "/usr/share/ca-certificates/") && strings.HasSuffix(f, ".crt") {
			certs = append(certs, f)
		}
	}
	slices.Sort(certs)
	if len(certs) == 0 {
		return pkg, nil, fmt.Errorf("ca-certificates %s lists no certificates", pkg.Version)
	}
	var bundle bytes.Buffer
	for _, c := range certs {
		b, err := os.ReadFile(c)
		if err != nil {
			return pkg, nil, err
		}
		bundle.Write(b)
		if !bytes.HasSuffix(b, []byte("\n")) {
			bundle.WriteByte('\n')
		}
	}
	return pkg, []entry{
		{Path: "etc/ssl/certs/ca-certificates.crt", Type: regularType, Mode: 0o644, Data: bundle.Bytes()},
		hostFile("usr/share/doc/ca-certificates/copyright", 0o644, "/usr/share/doc/ca-certificates/copyright"),
	}, nil
}

// libcShared matches the shared objects of libc6 the dynamic loader can find (not its gconv
// modules): enough for the node agent and for the libnvidia-ml the NVIDIA runtime injects.
var libcShared = regexp.MustCompile(`^/(usr/)?lib(64|/[a-z0-9_]+-linux-gnu)/[^/]+\.so(\.[0-9]+)*$`)

// glibc is the building machine's libc6: its shared objects, as files and links at the paths
// the package installs them to, and its copyright file.
func glibc() (debPackage, []entry, error) {
	pkg, err := hostPackage("libc6")
	if err != nil {
		return pkg, nil, err
	}
	var entries []entry
	for _, f := range pkg.files {
		if !libcShared.MatchString(f) {
			continue
		}
		st, err := os.Lstat(f)
		if err != nil {
			return pkg, nil, err
		}
		p := strings.TrimPrefix(f, "/")
		switch {
		case st.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(f)
			if err != nil {
				return pkg, nil, err
			}
			entries = append(entries, symlink(p, target))
		case st.Mode().IsRegular():
			entries = append(entries, hostFile(p, 0o755, f))
		}
	}
	if !slices.ContainsFunc(entries, func(e entry) bool { return filepath.Base(e.Path) == "libc.so.6" }) {
		return pkg, nil, fmt.Errorf("libc6 %s: no libc.so.6 among its files", pkg.Version)
	}
	entries = append(entries, hostFile("usr/share/doc/libc6/copyright", 0o644, "/usr/share/doc/libc6/copyright"))
	return pkg, entries, nil
}

// glibcFloor is the newest GLIBC_x.y symbol version a cgo binary imports: the oldest glibc
// it runs with ("" for a static binary).
func glibcFloor(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }() // read only
	syms, err := f.ImportedSymbols()
	if err != nil {
		if errors.Is(err, elf.ErrNoSymbols) {
			return "", nil
		}
		return "", err
	}
	floor := ""
	for _, s := range syms {
		if v, ok := strings.CutPrefix(s.Version, "GLIBC_"); ok && newerVersion(v, floor) {
			floor = v
		}
	}
	return floor, nil
}

// newerVersion compares dotted numeric versions ("2.34" > "2.4").
func newerVersion(a, b string) bool {
	if b == "" {
		return a != ""
	}
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x > y
		}
	}
	return false
}
