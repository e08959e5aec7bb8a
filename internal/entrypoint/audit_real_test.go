package entrypoint

import (
	"os"
	"strings"
	"testing"

	rt "github.com/trainenv/trainenv/internal/testutil/realtools"
)

// TestEntrypointRealAuditTrail: with the real sshd and Jupyter server, a login with key A and then key B appear
// in the audit trail with their fingerprints and authorized_keys comments, each followed
// by its logout with the session's length; a key not in authorized_keys appears as
// refused; a new Jupyter terminal and a request without the token appear; no private key
// and no token is ever written.
func TestEntrypointRealAuditTrail(t *testing.T) {
	p := safePod(t)
	keyA, keyB, keyC := p.client, rt.NewClientKey(t), rt.NewClientKey(t)
	authorized := strings.TrimSpace(string(keyA.AuthorizedKey)) + " alice@laptop\n" +
		strings.TrimSpace(string(keyB.AuthorizedKey)) + " ci@build\n"
	if err := os.WriteFile(p.paths.AuthorizedKeys, []byte(authorized), 0o644); err != nil {
		t.Fatal(err)
	}
	c := p.start(t, conf)
	known := rt.KnownHosts(t, "env", p.hostKeys)
	login := func(key rt.ClientKey) int {
		_, code := rt.Login{Port: p.paths.SSHPort, Key: key.Path, KnownHosts: known, Alias: "env", User: p.user.Name, Command: "true"}.Run()
		return code
	}
	if code := login(keyA); code != 0 {
		t.Fatalf("login with key A: %d", code)
	}
	if code := login(keyB); code != 0 {
		t.Fatalf("login with key B: %d", code)
	}
	if code := login(keyC); code != 255 {
		t.Fatalf("login with key C: %d, want 255 (refused)", code)
	}
	if code, body := p.jupyter(t, "POST", "/api/terminals", true); code != 200 {
		t.Fatalf("new terminal: %d %s", code, body)
	}
	if code, _ := p.jupyter(t, "GET", "/api/terminals", false); code != 403 {
		t.Fatalf("Jupyter without the token: %d, want 403", code)
	}
	// The link `kubectl trainenv connect` opens: a login with the token in the URL. Then a
	// page this image lacks (no notebook UI): jupyter_server 1.x logs its 404 with the
	// query, the token in it.
	if code, _ := p.jupyter(t, "GET", "/api/status?token="+p.token, false); code != 200 {
		t.Fatalf("login with ?token=: %d", code)
	}
	if code, _ := p.jupyter(t, "GET", "/nonexistent?token="+p.token, false); code != 404 {
		t.Fatalf("a missing page with ?token=: %d, want 404", code)
	}

	type seen struct{ event, fingerprint, comment string }
	want := []seen{
		{AuditSSHLogin, keyA.Fingerprint, "alice@laptop"},
		{AuditSSHLogout, keyA.Fingerprint, "alice@laptop"},
		{AuditSSHLogin, keyB.Fingerprint, "ci@build"},
		{AuditSSHLogout, keyB.Fingerprint, "ci@build"},
		{AuditSSHRefused, keyC.Fingerprint, ""},
		{AuditJupyterTerminal, "", ""},
		{AuditJupyterRefused, "", ""},
		{AuditJupyterLogin, "", ""},
		{AuditJupyterLogin, "", ""}, // every request with ?token= logs in (the 404 too)
	}
	var got []seen
	waitFor(t, "the audit trail of the SSH and Jupyter attempts", func() bool {
		got = nil
		for _, ev := range auditLines(t, c.out.String()) {
			got = append(got, seen{ev.Event, ev.KeyFingerprint, ev.KeyComment})
			if strings.HasPrefix(ev.Event, "ssh.") && (ev.User != p.user.Name || !strings.HasPrefix(ev.Remote, "127.0.0.1:")) {
				t.Errorf("event %+v: user or remote", ev)
			}
			if ev.Event == AuditSSHLogout && ev.SessionSeconds == nil {
				t.Errorf("logout without the session's length: %+v", ev)
			}
		}
		return len(got) >= len(want)
	})
	if len(got) != len(want) {
		t.Errorf("%d audit events, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i] != w {
			t.Errorf("audit event %d: %+v, want %+v\n%s", i, got[i], w, c.out.String())
		}
	}
	waitFor(t, "the server's log line of the missing page", func() bool { return strings.Contains(c.out.String(), "404 GET /nonexistent") })
	out := c.out.String()
	for _, secret := range []string{p.token, "PRIVATE KEY"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds a secret (%.12s...)", secret)
		}
	}
	for _, key := range []rt.ClientKey{keyA, keyB, keyC} {
		priv, err := os.ReadFile(key.Path)
		if err != nil {
			t.Fatal(err)
		}
		if body := strings.Split(string(priv), "\n")[1]; strings.Contains(out, body) {
			t.Error("the log holds a private key")
		}
	}
}
