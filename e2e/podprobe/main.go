// Command podprobe runs in the real node's check pod (e2e/cluster/check-realnode.sh), as a
// static binary in an otherwise empty image (e2e/binimage):
//
//	podprobe serve [--addr :8080]   logs a line, then answers every HTTP request with "podprobe ok"
//	podprobe whoami                 prints what the container may do, one "key=value" a line
//	podprobe fetch [--ca FILE] URL  prints the HTTP status and body of a GET (TLS checked against FILE)
//	podprobe put FILE TEXT          writes TEXT to FILE;  podprobe get FILE  prints it
//
// whoami reads the kernel's own view (/proc/self/status, a write to /), so the check script
// compares what the kubelet and runc really applied with what the pod spec asked for.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: podprobe serve [--addr :8080] | podprobe whoami")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		fs := flag.NewFlagSet("serve", flag.ExitOnError)
		addr := fs.String("addr", ":8080", "listen address")
		_ = fs.Parse(os.Args[2:])
		// As PID 1 of its container it gets no default SIGTERM handling from the kernel.
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		go func() { <-sigs; os.Exit(0) }()
		log.Printf("podprobe: listening on %s as uid %d", *addr, os.Getuid())
		log.Fatal(http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "podprobe ok\n")
		})))
	case "whoami":
		if err := whoami(os.Stdout, "/"); err != nil {
			fmt.Fprintln(os.Stderr, "podprobe:", err)
			os.Exit(1)
		}
	case "fetch":
		fs := flag.NewFlagSet("fetch", flag.ExitOnError)
		ca := fs.String("ca", "", "PEM file of the CA that signed the server's certificate")
		_ = fs.Parse(os.Args[2:])
		if fs.NArg() != 1 {
			fmt.Fprintln(os.Stderr, "usage: podprobe fetch [--ca FILE] URL")
			os.Exit(2)
		}
		if err := fetch(os.Stdout, *ca, fs.Arg(0)); err != nil {
			fmt.Fprintln(os.Stderr, "podprobe:", err)
			os.Exit(1)
		}
	case "put", "get":
		if err := putGet(os.Stdout, os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "podprobe:", err)
			os.Exit(1)
		}
	default:
		fmt.Fprintf(os.Stderr, "podprobe: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}

// whoami prints uid, gid, the effective/permitted/bounding capability sets, no_new_privs, the
// seccomp mode and whether the root filesystem refuses writes.
func whoami(w io.Writer, root string) error {
	fmt.Fprintf(w, "uid=%d\ngid=%d\n", os.Getuid(), os.Getgid())
	status, err := procStatus("/proc/self/status")
	if err != nil {
		return err
	}
	for _, k := range []string{"CapEff", "CapPrm", "CapBnd", "NoNewPrivs", "Seccomp"} {
		fmt.Fprintf(w, "%s=%s\n", k, status[k])
	}
	fmt.Fprintf(w, "rootfs=%s\n", writeMode(root))
	return nil
}

// fetch GETs url, trusting only the CA in caFile when it is set, and prints
// "status=CODE" and the body.
func fetch(w io.Writer, caFile, url string) error {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("no certificate in %s", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	fmt.Fprintf(w, "status=%d\n", resp.StatusCode)
	_, err = io.Copy(w, io.LimitReader(resp.Body, 64<<10))
	return err
}

// putGet runs "put FILE TEXT" (no shell in the image to redirect with) or "get FILE".
func putGet(w io.Writer, args []string) error {
	switch {
	case len(args) == 3 && args[0] == "put":
		return os.WriteFile(args[1], []byte(args[2]), 0o644)
	case len(args) == 2 && args[0] == "get":
		b, err := os.ReadFile(args[1])
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	return errors.New("usage: podprobe put FILE TEXT | podprobe get FILE")
}

func procStatus(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m, s.Err()
}

// writeMode is "read-only" when creating a file in dir fails with EROFS, "writable" when it
// succeeds (the file is removed again) and "error: ..." otherwise.
func writeMode(dir string) string {
	probe := filepath.Join(dir, ".podprobe-write-test")
	f, err := os.Create(probe)
	switch {
	case err == nil:
		f.Close()
		os.Remove(probe)
		return "writable"
	case errors.Is(err, syscall.EROFS):
		return "read-only"
	default:
		return "error: " + err.Error()
	}
}
