// Package accesslog is the format of the environment's access audit trail: one JSON object
// per line on the main container's standard output, written by the in-pod entrypoint
// (internal/entrypoint) and read back by the controller (internal/controller) to keep
// status.lastAccess and status.activity and to record aggregated Events. One type serves
// both sides, so the format is defined once.
package accesslog

import (
	"bytes"
	"encoding/json"
	"time"
)

// Field names are stable:
//
//	time             RFC 3339 with nanoseconds, UTC
//	audit            "trainenv.access/v1" on every line (what a collector filters on)
//	event            ssh.login, ssh.logout, ssh.refused, jupyter.login, jupyter.kernel,
//	                 jupyter.terminal, jupyter.refused, activity
//	user             the account asked for
//	key_type         e.g. ED25519
//	key_fingerprint  SHA256:… as ssh-keygen -l prints it
//	key_comment      the key's comment in authorized_keys (who it is), when it is there
//	remote           the client's address and port as the server saw them (port-forward: 127.0.0.1)
//	session_seconds  ssh.logout: how long the session lasted
//	reason           ssh.refused, jupyter.refused: why
//	kernel           jupyter.kernel: the kernel's id and name
//	terminal         jupyter.terminal: the terminal's name
//	request          jupyter.refused: the method and path refused, without the query
//	activity         activity: what the idle monitor counted ("busy: …", or the idle account)
//	in_use           activity: whether anything was in use
//	idle_since       activity, when not in use: the last moment something was (RFC 3339)
//
// Nothing secret is written: public-key fingerprints only, never a key, a token or a
// password; requests without their query.
const Schema = "trainenv.access/v1"

// Event is one line of the audit trail.
type Event struct {
	Time           string   `json:"time"`
	Audit          string   `json:"audit"`
	Event          string   `json:"event"`
	User           string   `json:"user,omitempty"`
	KeyType        string   `json:"key_type,omitempty"`
	KeyFingerprint string   `json:"key_fingerprint,omitempty"`
	KeyComment     string   `json:"key_comment,omitempty"`
	Remote         string   `json:"remote,omitempty"`
	SessionSeconds *float64 `json:"session_seconds,omitempty"`
	Reason         string   `json:"reason,omitempty"`
	Kernel         string   `json:"kernel,omitempty"`
	Terminal       string   `json:"terminal,omitempty"`
	Request        string   `json:"request,omitempty"`
	Activity       string   `json:"activity,omitempty"`
	InUse          *bool    `json:"in_use,omitempty"`
	IdleSince      string   `json:"idle_since,omitempty"`
}

// Events of the audit trail.
const (
	SSHLogin   = "ssh.login"
	SSHLogout  = "ssh.logout"
	SSHRefused = "ssh.refused"

	JupyterLogin    = "jupyter.login"
	JupyterKernel   = "jupyter.kernel"
	JupyterTerminal = "jupyter.terminal"
	JupyterRefused  = "jupyter.refused"

	// Activity is the idle monitor's account, written when it changes.
	Activity = "activity"
)

// Line is ev as one line of the trail, stamped with at and the schema.
func Line(at time.Time, ev Event) []byte {
	ev.Time = at.UTC().Format(time.RFC3339Nano)
	ev.Audit = Schema
	data, err := json.Marshal(ev)
	if err != nil { // cannot happen: strings, a float and a bool
		return nil
	}
	return append(data, '\n')
}

// Parse reads one line of a container log: the audit event it holds, or false for any
// other line (sshd's and Jupyter's own output, the entrypoint's messages, a line cut
// short by a byte limit).
func Parse(line []byte) (Event, bool) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' || !bytes.Contains(line, []byte(Schema)) {
		return Event{}, false
	}
	var ev Event
	if err := json.Unmarshal(line, &ev); err != nil || ev.Audit != Schema || ev.Event == "" {
		return Event{}, false
	}
	if _, err := time.Parse(time.RFC3339Nano, ev.Time); err != nil {
		return Event{}, false
	}
	return ev, true
}

// At is the event's time (zero when it does not parse; Parse refuses such lines).
func (e Event) At() time.Time {
	t, _ := time.Parse(time.RFC3339Nano, e.Time)
	return t
}

// Kind is "ssh" or "jupyter" for access events, "" for others.
func (e Event) Kind() string {
	switch e.Event {
	case SSHLogin, SSHLogout, SSHRefused:
		return "ssh"
	case JupyterLogin, JupyterKernel, JupyterTerminal, JupyterRefused:
		return "jupyter"
	}
	return ""
}

// Refused says whether the event is a refused attempt.
func (e Event) Refused() bool { return e.Event == SSHRefused || e.Event == JupyterRefused }

// Access says whether the event is someone getting in: an SSH login, a Jupyter login with
// the token, a new kernel or terminal (each needs the token).
func (e Event) Access() bool {
	switch e.Event {
	case SSHLogin, JupyterLogin, JupyterKernel, JupyterTerminal:
		return true
	}
	return false
}
