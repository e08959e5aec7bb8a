package entrypoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trainenv/trainenv/internal/access"
	"github.com/trainenv/trainenv/internal/accesslog"
)

var t0 = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

func TestIdleTracker(t *testing.T) {
	minute := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
	tr := NewIdleTracker(t0)
	steps := []struct {
		at   time.Time
		a    Activity
		err  error
		idle time.Duration
	}{
		{minute(10), Activity{}, nil, 10 * time.Minute},                         // fresh, nothing in use
		{minute(20), Activity{SSHSessions: 1}, nil, 0},                          // VS Code connected
		{minute(50), Activity{}, nil, 30 * time.Minute},                         // disconnected since the last probe in use
		{minute(60), Activity{LastActivity: minute(55)}, nil, 5 * time.Minute},  // a notebook was used in between
		{minute(70), Activity{LastActivity: minute(40)}, nil, 15 * time.Minute}, // older news changes nothing
		{minute(80), Activity{Terminals: 1}, nil, 0},                            // a terminal is open
		{minute(90), Activity{BusyKernels: 2}, nil, 0},                          // training in a notebook
		{minute(200), Activity{}, errors.New("jupyter: connection refused"), 0}, // unknown is not idle
		{minute(230), Activity{LastActivity: minute(500)}, nil, 0},              // a server clock ahead of ours
		{minute(290), Activity{}, nil, time.Hour},
	}
	for i, s := range steps {
		if got := tr.Observe(s.at, s.a, s.err); got != s.idle {
			t.Errorf("step %d (%v at +%v): idle %v, want %v", i, s.a, s.at.Sub(t0), got, s.idle)
		}
	}
}

// fakeClock advances only when the monitor waits: a day of probes runs in microseconds.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// scriptedProber answers from a function of the fake time.
type scriptedProber struct {
	clock *fakeClock
	at    func(since time.Duration) (Activity, error)
	calls int
}

func (p *scriptedProber) Probe(context.Context) (Activity, error) {
	p.calls++
	return p.at(p.clock.now.Sub(t0))
}

func TestIdleMonitorStopsAfterTheSetting(t *testing.T) {
	clock := &fakeClock{now: t0}
	// An SSH session for the first 3 hours, then nothing.
	prober := &scriptedProber{clock: clock, at: func(since time.Duration) (Activity, error) {
		if since <= 3*time.Hour {
			return Activity{SSHSessions: 1}, nil
		}
		return Activity{}, nil
	}}
	m := IdleMonitor{Prober: prober, After: 2 * time.Hour, Every: time.Minute, Clock: clock}
	reason := m.Run(context.Background())
	if want := access.IdleMessagePrefix + " for 2h0m0s: no SSH session, no terminal, no busy kernel, no busy process since 2026-11-22T11:00:00Z"; reason != want {
		t.Errorf("reason %q,\nwant %q", reason, want)
	}
	if stopped := clock.now.Sub(t0); stopped != 5*time.Hour {
		t.Errorf("stopped after %v, want 5h (3h in use + 2h idle)", stopped)
	}
}

func TestIdleMonitorEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	clock := &fakeClock{now: t0}
	prober := &scriptedProber{clock: clock, at: func(time.Duration) (Activity, error) {
		cancel()
		return Activity{BusyKernels: 1}, nil
	}}
	if reason := (IdleMonitor{Prober: prober, After: time.Hour, Every: time.Minute, Clock: clock}).Run(ctx); reason != "" {
		t.Errorf("reason %q after the context ended, want none", reason)
	}
}

// fakeJupyter answers the REST API the way jupyter_server does (JSON shapes of 1.x and 2.x).
func fakeJupyter(t *testing.T, token, kernels, terminals, lastActivity string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "token "+token {
			http.Error(w, "Forbidden", http.StatusForbidden)
			return
		}
		if r.URL.Query().Get("no_track_activity") != "1" {
			t.Errorf("%s without no_track_activity: the probe would count as use", r.URL.Path)
		}
		switch r.URL.Path {
		case "/api/kernels":
			fmt.Fprint(w, kernels)
		case "/api/terminals":
			fmt.Fprint(w, terminals)
		case "/api/status":
			fmt.Fprintf(w, `{"connections": 0, "kernels": 2, "last_activity": %q, "started": "2026-11-22T07:00:00.000000Z"}`, lastActivity)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestJupyterProbe(t *testing.T) {
	kernels := `[
	  {"id": "a", "name": "python3", "last_activity": "2026-11-22T07:59:00.000000Z", "execution_state": "busy", "connections": 1},
	  {"id": "b", "name": "python3", "last_activity": "2026-11-22T07:00:00.000000Z", "execution_state": "idle", "connections": 0},
	  {"id": "c", "name": "python3", "last_activity": "2026-11-22T07:00:00.000000Z", "execution_state": "starting", "connections": 0}
	]`
	terminals := `[{"name": "1", "last_activity": "2026-11-22T07:30:00.000000Z"}]`
	srv := fakeJupyter(t, "tok", kernels, terminals, "2026-11-22T07:59:30.123456Z")
	a, err := JupyterProbe{BaseURL: srv.URL, Token: "tok"}.Probe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := Activity{Terminals: 1, BusyKernels: 2, LastActivity: time.Date(2026, 11, 22, 7, 59, 30, 123456000, time.UTC)}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("activity %+v, want %+v", a, want)
	}
	if _, err := (JupyterProbe{BaseURL: srv.URL, Token: "wrong"}).Probe(context.Background()); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("wrong token: %v, want a 403 error", err)
	}
}

func TestProbesJoinErrors(t *testing.T) {
	p := Probes{SSH: &SSHProbe{ProcDir: t.TempDir(), Port: 2222}}
	if _, err := p.Probe(context.Background()); err == nil {
		t.Error("an unreadable TCP table gave no error")
	}
	srv := fakeJupyter(t, "tok", `[]`, `[]`, "2026-11-22T07:59:30Z")
	p = Probes{SSH: &SSHProbe{ProcDir: "/proc", Port: 1}, Jupyter: &JupyterProbe{BaseURL: srv.URL, Token: "tok"}}
	a, err := p.Probe(context.Background())
	if err != nil || a.InUse() {
		t.Errorf("idle environment: %+v, %v", a, err)
	}
}

// The monitor writes its account to the audit trail when it changes: one line while the
// SSH session lasts, one when it went idle (with the moment it last saw use), none for
// the probes in between; the controller reads them into status.activity.
func TestIdleMonitorWritesItsAccountToTheAuditTrail(t *testing.T) {
	clock := &fakeClock{now: t0}
	prober := &scriptedProber{clock: clock, at: func(since time.Duration) (Activity, error) {
		if since <= 3*time.Hour {
			return Activity{SSHSessions: 1}, nil
		}
		return Activity{}, nil
	}}
	var audit bytes.Buffer
	m := IdleMonitor{Prober: prober, After: 2 * time.Hour, Every: time.Minute, Clock: clock, Audit: &audit}
	m.Run(context.Background())
	evs := accesslog.Read(audit.Bytes(), time.Time{})
	if len(evs) != 2 {
		t.Fatalf("%d activity lines, want 2 (changes only):\n%s", len(evs), audit.String())
	}
	busy, idle := evs[0], evs[1]
	if busy.Event != accesslog.Activity || busy.Activity != "busy: 1 SSH session" || busy.InUse == nil || !*busy.InUse || busy.IdleSince != "" {
		t.Errorf("first line: %+v", busy)
	}
	if idle.InUse == nil || *idle.InUse || idle.Activity != "no SSH session, no terminal, no busy kernel, no busy process" ||
		idle.IdleSince != t0.Add(3*time.Hour).UTC().Format(time.RFC3339) {
		t.Errorf("second line: %+v", idle)
	}
	if !idle.At().After(busy.At()) {
		t.Errorf("times: %s then %s", busy.Time, idle.Time)
	}
}
