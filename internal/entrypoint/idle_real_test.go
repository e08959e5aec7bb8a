package entrypoint

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trainenv/trainenv/internal/access"
	"github.com/trainenv/trainenv/internal/accesslog"
)

// Idle shutdown with the real servers: an open Jupyter terminal and an SSH session each
// keep the environment up past the idle setting; once both are gone it stops with the
// idle termination message.
func TestEntrypointRealIdleShutdown(t *testing.T) {
	const idle = 4 * time.Second
	p := safePod(t)
	cfg := conf
	cfg.IdleSuspendAfterSeconds = int64(idle / time.Second)
	c := p.start(t, cfg)
	jupyter := JupyterProbe{BaseURL: "http://127.0.0.1:" + strconv.Itoa(p.paths.JupyterPort), Token: p.token}
	sshProbe := SSHProbe{ProcDir: "/proc", Port: uint16(p.paths.SSHPort)}

	// The probe's own requests are not activity: probing again and again for longer than
	// the server's one-second resolution of its last activity leaves it where it was.
	first, err := jupyter.Probe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	throughout(t, 1100*time.Millisecond, func() {
		if again, err := jupyter.Probe(context.Background()); err != nil || !again.LastActivity.Equal(first.LastActivity) {
			t.Fatalf("probing moved the server's last activity from %v to %v (%v)", first.LastActivity, again.LastActivity, err)
		}
	})

	code, body := p.jupyter(t, "POST", "/api/terminals", true)
	var term struct{ Name string }
	if code != http.StatusOK || json.Unmarshal([]byte(body), &term) != nil {
		t.Fatalf("new terminal: %d %s", code, body)
	}
	if a, err := jupyter.Probe(context.Background()); err != nil || a.Terminals != 1 {
		t.Fatalf("probe with a terminal open: %+v %v", a, err)
	}
	c.activityLogged(t, "the idle monitor sees the terminal", func(line string) bool {
		return strings.Contains(line, "1 terminal")
	})
	throughout(t, idle+2*time.Second, func() { c.running(t) })

	// An SSH session takes over; then the terminal closes.
	session := make(chan int, 1)
	go func() { _, code := p.ssh(t, "sleep 8"); session <- code }()
	waitFor(t, "the SSH session", func() bool { n, _ := sshProbe.Sessions(); return n == 1 })
	if code, body := p.jupyter(t, "DELETE", "/api/terminals/"+term.Name, true); code != http.StatusNoContent {
		t.Fatalf("closing the terminal: %d %s", code, body)
	}
	c.activityLogged(t, "the idle monitor sees the SSH session alone", func(line string) bool {
		return strings.Contains(line, "1 SSH session") && !strings.Contains(line, "terminal")
	})
	throughout(t, idle+2*time.Second, func() { c.running(t) })

	if code := <-session; code != 0 {
		t.Errorf("the SSH session ended with %d", code)
	}
	sessionEnded := time.Now()
	if code := c.exitCode(t); code != 0 {
		t.Errorf("exit %d after idling, want 0", code)
	}
	if stoppedAfter := time.Since(sessionEnded); stoppedAfter < idle-time.Second {
		t.Errorf("stopped %v after the last session ended, want about %v", stoppedAfter, idle)
	}
	if msg := readFile(t, p.paths.TerminationLog); !strings.HasPrefix(msg, access.IdleMessagePrefix+" for ") {
		t.Errorf("termination message %q, want it to start with %q", msg, access.IdleMessagePrefix)
	}

	// The same account reaches the audit trail, as the controller reads it from the log:
	// busy with the terminal, then with the SSH session, then idle since the session ended.
	var accounts []string
	evs := accesslog.Read([]byte(c.out.String()), time.Time{})
	for _, ev := range evs {
		if ev.Event == accesslog.Activity {
			accounts = append(accounts, ev.Activity)
		}
	}
	s := accesslog.Summarize(evs, time.Minute)
	if s.Activity == nil || s.Activity.InUse == nil || *s.Activity.InUse || s.Activity.IdleSince == "" ||
		!strings.HasPrefix(s.Activity.Activity, "no SSH session") {
		t.Errorf("last activity line %+v, want idle with idle_since; all: %q", s.Activity, accounts)
	} else if since, err := time.Parse(time.RFC3339, s.Activity.IdleSince); err != nil || since.Before(sessionEnded.Add(-5*time.Second)) {
		t.Errorf("idle_since %s, want about when the session ended (%s)", s.Activity.IdleSince, sessionEnded.UTC().Format(time.RFC3339))
	}
	if !slices.ContainsFunc(accounts, func(a string) bool { return strings.Contains(a, "1 terminal") }) ||
		!slices.ContainsFunc(accounts, func(a string) bool {
			return strings.HasPrefix(a, "busy: 1 SSH session") && !strings.Contains(a, "terminal")
		}) {
		t.Errorf("activity lines %q, want the terminal and the SSH session", accounts)
	}
	if !strings.Contains(s.Note, "1 SSH login by ") || !strings.Contains(s.Note, "1 Jupyter terminal opened") {
		t.Errorf("the accesses summed up: %q", s.Note)
	}
}

// activityLogged waits until the entrypoint's idle monitor has logged an activity line
// (it logs one whenever what it sees changes) for which match holds.
func (c *child) activityLogged(t *testing.T, what string, match func(line string) bool) {
	t.Helper()
	waitFor(t, what, func() bool {
		for _, l := range strings.Split(c.out.String(), "\n") {
			if _, line, ok := strings.Cut(l, "trainenv-entrypoint: activity: "); ok && match(line) {
				return true
			}
		}
		return false
	})
}

// throughout runs check every 50 ms for d: a property that must hold over a span of time
// (the idle setting passing without a stop), checked all along rather than once at its end.
func throughout(t *testing.T, d time.Duration, check func()) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for end := time.Now().Add(d); time.Now().Before(end); <-tick.C {
		check()
	}
	check()
}
