package entrypoint

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/trainenv/trainenv/internal/access"
	"github.com/trainenv/trainenv/internal/accesslog"
	"github.com/trainenv/trainenv/internal/gpufacts"
)

// Activity is what a probe saw in the environment at one moment.
type Activity struct {
	// SSHSessions: established connections to sshd (VS Code, a shell, a tunnel).
	SSHSessions int
	// Terminals: open Jupyter terminals. An open terminal counts as use even when quiet:
	// a training run in it may print nothing for hours.
	Terminals int
	// BusyKernels: kernels executing code.
	BusyKernels int
	// BusyProcesses: the user's processes that used at least BusyCPU since the last probe,
	// busiest first: a run under nohup or tmux with nobody connected is work in progress.
	BusyProcesses []ProcessUse
	// GPUs: the pod's GPUs (nil when it has none); any utilisation is work in progress.
	GPUs []gpufacts.GPUActivity
	// LastActivity is the last moment the Jupyter server saw any use (requests, kernel
	// messages, terminal I/O), from its /api/status; zero when unknown.
	LastActivity time.Time
}

// InUse says whether anything is going on right now.
func (a Activity) InUse() bool {
	return a.SSHSessions > 0 || a.Terminals > 0 || a.BusyKernels > 0 || len(a.BusyProcesses) > 0 || len(a.busyGPUs()) > 0
}

func (a Activity) busyGPUs() []gpufacts.GPUActivity {
	var busy []gpufacts.GPUActivity
	for _, g := range a.GPUs {
		if g.Busy() {
			busy = append(busy, g)
		}
	}
	return busy
}

// String says what was counted: "busy: 1 process using GPU 0 at 97 %, python3 (pid 42) at
// 100 % CPU" while in use, "no SSH session, no terminal, no busy kernel, no busy process,
// GPUs idle (GPU 0 at 0 %)" when not.
func (a Activity) String() string {
	if !a.InUse() {
		return a.idleAccount()
	}
	var parts []string
	count := func(n int, one, many string) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, plural(n, one, many)))
		}
	}
	count(a.SSHSessions, "SSH session", "SSH sessions")
	count(a.Terminals, "terminal", "terminals")
	count(a.BusyKernels, "busy kernel", "busy kernels")
	for _, g := range a.busyGPUs() {
		parts = append(parts, g.String())
	}
	const shown = 3
	for _, p := range a.BusyProcesses[:min(len(a.BusyProcesses), shown)] {
		parts = append(parts, p.String())
	}
	if more := len(a.BusyProcesses) - shown; more > 0 {
		parts = append(parts, fmt.Sprintf("%d more busy %s", more, plural(more, "process", "processes")))
	}
	return "busy: " + strings.Join(parts, ", ")
}

// idleAccount lists what was measured and found idle.
func (a Activity) idleAccount() string {
	account := "no SSH session, no terminal, no busy kernel, no busy process"
	if len(a.GPUs) == 0 {
		return account
	}
	gpus := make([]string, len(a.GPUs))
	for i, g := range a.GPUs {
		gpus[i] = g.String()
	}
	return account + ", GPUs idle (" + strings.Join(gpus, ", ") + ")"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// IdleTracker turns probe results into how long the environment has been idle.
type IdleTracker struct {
	lastUse time.Time
}

// NewIdleTracker starts counting at start: a fresh environment is not idle yet.
func NewIdleTracker(start time.Time) *IdleTracker { return &IdleTracker{lastUse: start} }

// Observe records what a probe saw at now and returns for how long nothing has been in
// use. A failed probe counts as use: an environment is never stopped on a guess.
func (t *IdleTracker) Observe(now time.Time, a Activity, probeErr error) time.Duration {
	if probeErr != nil || a.InUse() {
		t.lastUse = now
		return 0
	}
	if a.LastActivity.After(t.lastUse) {
		t.lastUse = a.LastActivity
		if t.lastUse.After(now) { // a server clock ahead of ours
			t.lastUse = now
		}
	}
	return now.Sub(t.lastUse)
}

// LastUse is the last moment the environment was seen in use.
func (t *IdleTracker) LastUse() time.Time { return t.lastUse }

// Prober reports the environment's activity.
type Prober interface {
	Probe(ctx context.Context) (Activity, error)
}

// Clock is time as the idle monitor sees it; tests substitute their own.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// IdleMonitor probes every Every and reports when nothing has been in use for After.
type IdleMonitor struct {
	Prober Prober
	After  time.Duration
	Every  time.Duration
	Clock  Clock
	Log    io.Writer
	// Audit receives the account as a JSON line of the audit trail (accesslog.Activity)
	// when it changes, for the controller's status.activity.
	Audit io.Writer
}

// Run returns the termination message (starting with access.IdleMessagePrefix) once
// the environment has been idle for m.After, or "" when ctx ends first.
func (m IdleMonitor) Run(ctx context.Context) string {
	clock := m.Clock
	if clock == nil {
		clock = realClock{}
	}
	tracker := NewIdleTracker(clock.Now())
	var last string
	for {
		select {
		case <-ctx.Done():
			return ""
		case <-clock.After(m.Every):
		}
		pctx, cancel := context.WithTimeout(ctx, max(m.Every/2, time.Second))
		a, err := m.Prober.Probe(pctx)
		cancel()
		now := clock.Now()
		idle := tracker.Observe(now, a, err)
		line := describe(a, err)
		inUse := err != nil || a.InUse()
		key := summary(line)
		if !inUse {
			key += " since " + tracker.LastUse().String()
		}
		if key != last { // changes only
			last = key
			if m.Log != nil {
				fmt.Fprintf(m.Log, "trainenv-entrypoint: activity: %s\n", line)
			}
			if m.Audit != nil {
				_, _ = m.Audit.Write(activityLine(now, line, inUse, tracker.LastUse()))
			}
		}
		if idle >= m.After {
			return fmt.Sprintf("%s for %s: %s since %s",
				access.IdleMessagePrefix, idle.Truncate(time.Second), a.idleAccount(), tracker.LastUse().UTC().Format(time.RFC3339))
		}
	}
}

func describe(a Activity, err error) string {
	if err != nil {
		return "unknown (" + strings.TrimSpace(err.Error()) + "), counted as in use"
	}
	return a.String()
}

// percentages are the numbers of an activity line that change from probe to probe.
var percentages = regexp.MustCompile(` at \d+ %`)

// summary is an activity line without its percentages: the log shows a line when the
// summary changes, not at every probe of a long run.
func summary(line string) string { return percentages.ReplaceAllString(line, "") }

// activityLine is the account as a line of the audit trail.
func activityLine(now time.Time, account string, inUse bool, lastUse time.Time) []byte {
	ev := accesslog.Event{Event: accesslog.Activity, Activity: account, InUse: &inUse}
	if !inUse {
		ev.IdleSince = lastUse.UTC().Format(time.RFC3339)
	}
	return accesslog.Line(now, ev)
}
