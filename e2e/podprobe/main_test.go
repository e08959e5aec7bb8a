package main

import (
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestProcStatus(t *testing.T) {
	p := filepath.Join(t.TempDir(), "status")
	content := "Name:\tpodprobe\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n"
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := procStatus(p)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"CapEff": "0000000000000000", "NoNewPrivs": "1", "Seccomp": "2", "Name": "podprobe"} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q", k, got[k], want)
		}
	}
}

func TestProcStatusOfThisProcess(t *testing.T) {
	got, err := procStatus("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"CapEff", "CapBnd", "NoNewPrivs", "Seccomp"} {
		if _, ok := got[k]; !ok {
			t.Errorf("/proc/self/status has no %s", k)
		}
	}
}

func TestWriteMode(t *testing.T) {
	dir := t.TempDir()
	if got := writeMode(dir); got != "writable" {
		t.Errorf("writeMode(temp dir) = %q, want writable", got)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("writeMode left %d files behind", len(entries))
	}
	if got := writeMode(filepath.Join(dir, "missing")); !strings.HasPrefix(got, "error: ") {
		t.Errorf("writeMode(missing dir) = %q, want an error", got)
	}
}

func TestWhoami(t *testing.T) {
	var b strings.Builder
	if err := whoami(&b, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"uid=", "CapEff=", "NoNewPrivs=", "Seccomp=", "rootfs="} {
		if !strings.Contains(b.String(), k) {
			t.Errorf("whoami output lacks %q:\n%s", k, b.String())
		}
	}
}

func TestFetchChecksTheCA(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"gitVersion":"v1.37.2"}`))
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.crt")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := fetch(&b, ca, srv.URL); err != nil {
		t.Fatal(err)
	}
	if want := "status=200\n{\"gitVersion\":\"v1.37.2\"}"; b.String() != want {
		t.Errorf("fetch printed %q, want %q", b.String(), want)
	}
	// Without the server's CA the TLS handshake must fail.
	if err := fetch(&strings.Builder{}, "", srv.URL); err == nil {
		t.Error("fetch trusted a server whose CA it was not given")
	}
}

func TestPutGet(t *testing.T) {
	f := filepath.Join(t.TempDir(), "kept")
	if err := putGet(io.Discard, []string{"put", f, "survives"}); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := putGet(&b, []string{"get", f}); err != nil {
		t.Fatal(err)
	}
	if b.String() != "survives" {
		t.Errorf("get printed %q, want survives", b.String())
	}
	if err := putGet(io.Discard, []string{"get", f + ".missing"}); err == nil {
		t.Error("get of a missing file succeeded")
	}
	if err := putGet(io.Discard, []string{"put", f}); err == nil {
		t.Error("put without TEXT succeeded")
	}
}
