package accesslog

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var t0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

func ev(sec int, e Event) Event {
	e.Time = t0.Add(time.Duration(sec) * time.Second).Format(time.RFC3339Nano)
	e.Audit = Schema
	return e
}

const fpA, fpB, fpC = "SHA256:AAAAaaaa", "SHA256:BBBBbbbb", "SHA256:CCCCcccc"

func login(sec int, fp, comment string) Event {
	return ev(sec, Event{Event: SSHLogin, User: "jovyan", KeyType: "ED25519", KeyFingerprint: fp, KeyComment: comment, Remote: "127.0.0.1:40000"})
}

func TestSummarize(t *testing.T) {
	yes, no := true, false
	refusedC := ev(9, Event{Event: SSHRefused, User: "jovyan", KeyFingerprint: fpC, Reason: "key not in authorized_keys"})
	for _, tc := range []struct {
		name     string
		events   []Event
		note     string
		last     string // LastAccess's fingerprint or event
		activity string
	}{
		{name: "nothing", note: ""},
		{
			name:   "a reconnect storm is one note per key",
			events: []Event{login(1, fpA, "alice@laptop"), login(2, fpA, "alice@laptop"), login(3, fpA, "alice@laptop"), login(4, fpB, ""), refusedC},
			note:   "3 SSH logins by SHA256:AAAAaaaa (alice@laptop), 1 SSH login by SHA256:BBBBbbbb in the last 10m0s; 1 refused: SSH key SHA256:CCCCcccc (key not in authorized_keys)",
			last:   fpB,
		},
		{
			name:   "logouts are not accesses",
			events: []Event{login(1, fpA, "alice@laptop"), ev(5, Event{Event: SSHLogout, KeyFingerprint: fpA})},
			note:   "1 SSH login by SHA256:AAAAaaaa (alice@laptop) in the last 10m0s",
			last:   fpA,
		},
		{
			name:   "refusals alone",
			events: []Event{refusedC, refusedC, ev(10, Event{Event: SSHRefused, User: "root", Reason: "no such user"}), ev(11, Event{Event: JupyterRefused, Request: "GET /api/status", Reason: "no valid token"})},
			note:   `no access in the last 10m0s; 4 refused: SSH key SHA256:CCCCcccc (key not in authorized_keys), SSH user "root" (no such user), Jupyter GET /api/status (no valid token)`,
		},
		{
			name: "Jupyter",
			events: []Event{ev(1, Event{Event: JupyterLogin}), ev(2, Event{Event: JupyterKernel, Kernel: "k python3"}),
				ev(3, Event{Event: JupyterKernel, Kernel: "k2 python3"}), ev(4, Event{Event: JupyterTerminal, Terminal: "1"})},
			note: "1 Jupyter login with the token, 2 Jupyter kernels started, 1 Jupyter terminal opened in the last 10m0s",
			last: JupyterTerminal,
		},
		{
			name: "more kinds than a note names",
			events: []Event{login(1, "SHA256:1", ""), login(2, "SHA256:2", ""), login(3, "SHA256:3", ""), login(4, "SHA256:4", ""),
				login(5, "SHA256:5", ""), login(6, "SHA256:5", "")},
			note: "1 SSH login by SHA256:1, 1 SSH login by SHA256:2, 1 SSH login by SHA256:3, 1 SSH login by SHA256:4, 2 more in the last 10m0s",
			last: "SHA256:5",
		},
		{
			name: "activity only: no note, the latest account",
			events: []Event{ev(1, Event{Event: Activity, Activity: "busy: 1 SSH session", InUse: &yes}),
				ev(60, Event{Event: Activity, Activity: "no SSH session", InUse: &no, IdleSince: t0.Format(time.RFC3339)})},
			activity: "no SSH session",
		},
		{
			name: "long key comments: the note stays within an Event's limit",
			events: []Event{login(1, "SHA256:1", strings.Repeat("é", 300)), login(2, "SHA256:2", strings.Repeat("x", 600)),
				ev(3, Event{Event: SSHRefused, KeyFingerprint: "SHA256:3", KeyComment: strings.Repeat("y", 600), Reason: "r"})},
			note: ("1 SSH login by SHA256:1 (" + strings.Repeat("é", 300) + "), 1 SSH login by SHA256:2 (" + strings.Repeat("x", 600))[:MaxNote-len("…")] + "…",
			last: "SHA256:2",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Summarize(tc.events, 10*time.Minute)
			if len(s.Note) > MaxNote || !utf8.ValidString(s.Note) {
				t.Errorf("note of %d bytes (valid UTF-8: %v)", len(s.Note), utf8.ValidString(s.Note))
			}
			if s.Note != tc.note {
				t.Errorf("note:\n got %q\nwant %q", s.Note, tc.note)
			}
			var last string
			if s.LastAccess != nil {
				last = s.LastAccess.KeyFingerprint
				if last == "" {
					last = s.LastAccess.Event
				}
			}
			if last != tc.last {
				t.Errorf("last access %q, want %q", last, tc.last)
			}
			var activity string
			if s.Activity != nil {
				activity = s.Activity.Activity
			}
			if activity != tc.activity {
				t.Errorf("activity %q, want %q", activity, tc.activity)
			}
			if n := len(tc.events); n > 0 && !s.Through.Equal(tc.events[n-1].At()) {
				t.Errorf("through %v, want the latest event's time", s.Through)
			}
		})
	}
}

// Read keeps the audit lines later than a time, and nothing else of a container log:
// sshd's and Jupyter's lines, the entrypoint's, a JSON line of another program, a line
// cut short by the byte limit.
func TestRead(t *testing.T) {
	lines := []string{
		string(Line(t0.Add(-time.Second), Event{Event: SSHLogin, KeyFingerprint: "old"})),
		"Accepted publickey for jovyan from 127.0.0.1 port 40312 ssh2: ED25519 SHA256:x",
		"trainenv-entrypoint: activity: busy: 1 SSH session",
		string(Line(t0, Event{Event: SSHLogin, KeyFingerprint: "at the mark"})),
		`{"time":"2026-12-07T10:00:05Z","level":"info","msg":"someone else's JSON"}`,
		string(Line(t0.Add(time.Nanosecond), Event{Event: SSHLogin, KeyFingerprint: "new"})),
		`{"time":"2026-12-07T10:00:06Z","audit":"trainenv.access/v1","event":"ssh.lo`,
		`{"time":"yesterday","audit":"trainenv.access/v1","event":"ssh.login"}`,
		string(Line(t0.Add(time.Hour), Event{Event: JupyterKernel, Kernel: "k"})),
	}
	got := Read([]byte(strings.Join(lines, "\n")), t0)
	if len(got) != 2 || got[0].KeyFingerprint != "new" || got[1].Event != JupyterKernel {
		t.Fatalf("read %+v", got)
	}
}

func TestParseRoundTrip(t *testing.T) {
	secs := 12.5
	in := Event{Event: SSHLogout, User: "jovyan", KeyType: "ED25519", KeyFingerprint: fpA, KeyComment: "alice@laptop", Remote: "127.0.0.1:1", SessionSeconds: &secs}
	out, ok := Parse(Line(t0, in))
	if !ok || out.Audit != Schema || !out.At().Equal(t0) || out.KeyComment != "alice@laptop" || *out.SessionSeconds != secs {
		t.Fatalf("%v %+v", ok, out)
	}
	if out.Kind() != "ssh" || out.Access() || out.Refused() {
		t.Errorf("kind %q access %v refused %v", out.Kind(), out.Access(), out.Refused())
	}
}

// BenchmarkReadFullLimit reads and sums up one read at the controller's byte limit
// (256 KiB) of a reconnect storm: SSH logins interleaved with sshd's own lines.
func BenchmarkReadFullLimit(b *testing.B) {
	var log []byte
	for i := 0; len(log) < 256*1024; i++ {
		log = append(log, "Accepted publickey for jovyan from 127.0.0.1 port 40312 ssh2: ED25519 SHA256:x\n"...)
		log = append(log, Line(t0.Add(time.Duration(i)*time.Millisecond), Event{Event: SSHLogin, User: "jovyan", KeyType: "ED25519",
			KeyFingerprint: fpA, KeyComment: "alice@laptop", Remote: "127.0.0.1:40312"})...)
	}
	b.SetBytes(int64(len(log)))
	b.ReportAllocs()
	for b.Loop() {
		s := Summarize(Read(log, time.Time{}), 5*time.Minute)
		if s.Accesses == 0 {
			b.Fatal("nothing read")
		}
	}
}
