package entrypoint

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func newKey(t *testing.T) (authorizedLine, fingerprint string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))), ssh.FingerprintSHA256(k)
}

func auditLines(t *testing.T, out string) []AuditEvent {
	t.Helper()
	var evs []AuditEvent
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.Contains(l, AuditSchema) {
			continue
		}
		var ev AuditEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("audit line %q: %v", l, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// TestSSHAuditFromSSHDLog reads sshd's own VERBOSE lines (OpenSSH 9.2 as it logs with -e).
func TestSSHAuditFromSSHDLog(t *testing.T) {
	lineA, fpA := newKey(t)
	_, fpC := newKey(t)
	keys := filepath.Join(t.TempDir(), "authorized_keys")
	if err := os.WriteFile(keys, []byte("# the team\n"+lineA+" alice@laptop\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	now := t0
	var out, passed bytes.Buffer
	a := &SSHAudit{AuthorizedKeys: keys, Out: &out, Now: func() time.Time { return now }}
	log := strings.Join([]string{
		"Server listening on 127.0.0.1 port 2222.",
		"Connection from 127.0.0.1 port 40312 on 127.0.0.1 port 2222 rdomain \"\"",
		"Failed publickey for trainenv from 127.0.0.1 port 40312 ssh2: ED25519 " + fpC,
		"Accepted publickey for trainenv from 127.0.0.1 port 40312 ssh2: ED25519 " + fpA,
		"Invalid user root from 127.0.0.1 port 40400",
		"Starting session: shell on pts/0 for trainenv from 127.0.0.1 port 40312 id 0",
	}, "\n") + "\n"
	a.Follow(strings.NewReader(log), &passed)
	now = now.Add(90 * time.Second)
	a.Line("Received disconnect from 127.0.0.1 port 40312:11: disconnected by user")
	a.Line("Disconnected from user trainenv 127.0.0.1 port 40312")
	a.Line("Disconnected from user trainenv 127.0.0.1 port 40312") // once only

	if passed.String() != log {
		t.Errorf("sshd's log was not passed on unchanged:\n%s", passed.String())
	}
	evs := auditLines(t, out.String())
	if len(evs) != 4 {
		t.Fatalf("%d events, want 4:\n%s", len(evs), out.String())
	}
	want := []AuditEvent{
		{Event: AuditSSHRefused, User: "trainenv", KeyType: "ED25519", KeyFingerprint: fpC, Remote: "127.0.0.1:40312", Reason: "key not in authorized_keys"},
		{Event: AuditSSHLogin, User: "trainenv", KeyType: "ED25519", KeyFingerprint: fpA, KeyComment: "alice@laptop", Remote: "127.0.0.1:40312"},
		{Event: AuditSSHRefused, User: "root", Remote: "127.0.0.1:40400", Reason: "no such user: only the container's own user may log in"},
		{Event: AuditSSHLogout, User: "trainenv", KeyType: "ED25519", KeyFingerprint: fpA, KeyComment: "alice@laptop", Remote: "127.0.0.1:40312"},
	}
	for i, w := range want {
		got := evs[i]
		if got.Audit != AuditSchema || got.Time == "" {
			t.Errorf("event %d without schema or time: %+v", i, got)
		}
		got.Audit, got.Time, got.SessionSeconds = "", "", nil
		if got != w {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, got, w)
		}
	}
	if s := evs[3].SessionSeconds; s == nil || *s != 90 {
		t.Errorf("session length %v, want 90 s", s)
	}
	if evs[1].Time != "2026-11-22T08:00:00Z" {
		t.Errorf("login time %q", evs[1].Time)
	}
}

// TestJupyterAuditFromServerLog reads jupyter_server's own lines (1.23 as Debian 12 ships it).
func TestJupyterAuditFromServerLog(t *testing.T) {
	var out bytes.Buffer
	a := &JupyterAudit{Out: &out, Now: func() time.Time { return t0 }}
	log := strings.Join([]string{
		"[I 2026-12-07 04:57:44.118 ServerApp] http://127.0.0.1:8888/?token=...",
		"[I 2026-12-07 04:57:46.100 ServerApp] Kernel started: 5f1c2d3e-0000-4a4a-9b9b-0123456789ab, name: python3",
		"[I 2026-12-07 04:57:47.070 ServerApp] New terminal with automatic name: 1",
		"[W 2026-12-07 04:57:45.323 ServerApp] 403 GET /api/status?token=wrong-guess (127.0.0.1) 49.20ms referer=None",
		"[I 2026-12-07 04:57:48.001 ServerApp] trainenv-audit: token login from 127.0.0.1",
		"[W 2026-12-07 04:57:49.002 ServerApp] 404 GET /tree?token=the-right-one (127.0.0.1) 8.37ms referer=http://127.0.0.1:8888/?TOKEN=the-right-one&x=1",
		"[E 2026-12-07 04:57:49.003 ServerApp] Uncaught exception POST /api/kernels?token%3Dthe-right-one (127.0.0.1)",
	}, "\n")
	var passed bytes.Buffer
	a.Follow(strings.NewReader(log), &passed)
	evs := auditLines(t, out.String())
	want := []AuditEvent{
		{Event: AuditJupyterKernel, Kernel: "5f1c2d3e-0000-4a4a-9b9b-0123456789ab python3"},
		{Event: AuditJupyterTerminal, Terminal: "1"},
		{Event: AuditJupyterRefused, Request: "GET /api/status", Remote: "127.0.0.1", Reason: "no valid token"},
		{Event: AuditJupyterLogin, Remote: "127.0.0.1"},
	}
	if len(evs) != len(want) {
		t.Fatalf("%d events, want %d:\n%s", len(evs), len(want), out.String())
	}
	for i, w := range want {
		got := evs[i]
		got.Audit, got.Time = "", ""
		if got != w {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, got, w)
		}
	}
	if strings.Contains(out.String(), "wrong-guess") {
		t.Error("a token from a query string was copied into the audit trail")
	}
	// jupyter_server 1.x logs the URI of redirected and failed requests with their query:
	// the server's lines reach the container log without any token.
	for _, secret := range []string{"wrong-guess", "the-right-one"} {
		if strings.Contains(passed.String(), secret) {
			t.Errorf("a token reached the container log:\n%s", passed.String())
		}
	}
	if !strings.Contains(passed.String(), "404 GET /tree?token=[redacted] (127.0.0.1)") {
		t.Errorf("the server's line is not passed on, redacted:\n%s", passed.String())
	}
}
