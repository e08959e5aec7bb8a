package accesslog

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Summary is what one read of the trail says: the latest access and activity, and one
// note for all the accesses in it (a reconnect storm is one Event, not hundreds).
type Summary struct {
	// LastAccess is the latest access event (Access), nil when none.
	LastAccess *Event
	// Activity is the latest activity line, nil when none.
	Activity *Event
	// Accesses and Refused count the access events and the refused attempts.
	Accesses, Refused int
	// Note sums the accesses up for an Event, "" when there were none.
	Note string
	// Through is the time of the latest event read: the next read skips what is not
	// later (the log is read from a time with whole-second precision).
	Through time.Time
}

// maxGroups is how many kinds of access a note names; the rest are counted.
const maxGroups = 4

// MaxNote is the longest note: the API server refuses an Event whose note is longer than
// 1 KiB (key comments can be long).
const MaxNote = 1024

// Read parses the lines of log that are audit events later than after, in order.
func Read(log []byte, after time.Time) []Event {
	var out []Event
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if ev, ok := Parse(sc.Bytes()); ok && ev.At().After(after) {
			out = append(out, ev)
		}
	}
	return out
}

// Summarize sums events up; window is the span they cover, for the note ("in the last
// 5m0s").
func Summarize(events []Event, window time.Duration) Summary {
	var s Summary
	type group struct {
		what  string
		count int
		first int
	}
	groups := map[string]*group{}
	var refused []string
	for i := range events {
		ev := events[i]
		if at := ev.At(); at.After(s.Through) {
			s.Through = at
		}
		switch {
		case ev.Event == Activity:
			s.Activity = &events[i]
		case ev.Refused():
			s.Refused++
			if r := refusal(ev); !slices.Contains(refused, r) {
				refused = append(refused, r)
			}
		case ev.Access():
			s.Accesses++
			s.LastAccess = &events[i]
			key := accessGroup(ev)
			if groups[key] == nil {
				groups[key] = &group{what: key, first: i}
			}
			groups[key].count++
		}
	}
	if s.Accesses+s.Refused == 0 {
		return s
	}
	list := make([]*group, 0, len(groups))
	for _, g := range groups {
		list = append(list, g)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].first < list[j].first })
	var parts []string
	for i, g := range list {
		if i == maxGroups {
			rest := 0
			for _, g := range list[i:] {
				rest += g.count
			}
			parts = append(parts, fmt.Sprintf("%d more", rest))
			break
		}
		parts = append(parts, fmt.Sprintf("%d %s", g.count, plural(g.count, g.what)))
	}
	note := strings.Join(parts, ", ")
	if note == "" {
		note = "no access"
	}
	note += " in the last " + window.Round(time.Second).String()
	if s.Refused > 0 {
		if len(refused) > maxGroups {
			refused = append(refused[:maxGroups], "…")
		}
		note += fmt.Sprintf("; %d refused: %s", s.Refused, strings.Join(refused, ", "))
	}
	s.Note = truncate(note, MaxNote)
	return s
}

// truncate cuts s to at most n bytes, at a rune boundary, ending with "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	cut := n - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// accessGroup names a kind of access with its credential: "SSH login by SHA256:… (alice@laptop)".
func accessGroup(ev Event) string {
	switch ev.Event {
	case SSHLogin:
		return "SSH login by " + keyName(ev)
	case JupyterLogin:
		return "Jupyter login with the token"
	case JupyterKernel:
		return "Jupyter kernel started"
	default:
		return "Jupyter terminal opened"
	}
}

// refusal names a refused attempt: "SSH key SHA256:… (not in authorized_keys)".
func refusal(ev Event) string {
	switch {
	case ev.Event == JupyterRefused:
		return "Jupyter " + ev.Request + " (" + ev.Reason + ")"
	case ev.KeyFingerprint != "":
		return "SSH key " + keyName(ev) + " (" + ev.Reason + ")"
	}
	return "SSH user " + fmt.Sprintf("%q", ev.User) + " (" + ev.Reason + ")"
}

func keyName(ev Event) string {
	if ev.KeyComment != "" {
		return ev.KeyFingerprint + " (" + ev.KeyComment + ")"
	}
	return ev.KeyFingerprint
}

// plural makes the first word after the count plural: "SSH logins by …", "Jupyter kernels started".
func plural(n int, what string) string {
	if n == 1 {
		return what
	}
	for _, noun := range []string{"login", "kernel", "terminal"} {
		if i := strings.Index(what, noun); i >= 0 {
			return what[:i+len(noun)] + "s" + what[i+len(noun):]
		}
	}
	return what
}
