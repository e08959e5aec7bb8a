package entrypoint

import (
	"bufio"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/trainenv/trainenv/internal/access"
	"github.com/trainenv/trainenv/internal/accesslog"
)

// The access audit trail: the entrypoint writes one JSON object per line to its standard
// output for every access, for a log collector to ship and for the controller to read back
// (the format, its stable field names and its event type are in internal/accesslog).
//
// Nothing secret is written: sshd logs public-key fingerprints only, never a key or a
// password, and the audit copies no other text of the log line.

// AuditEvent is one line of the audit trail.
type AuditEvent = accesslog.Event

// AuditSchema marks every audit line.
const AuditSchema = accesslog.Schema

// Events of the audit trail.
const (
	AuditSSHLogin   = accesslog.SSHLogin
	AuditSSHLogout  = accesslog.SSHLogout
	AuditSSHRefused = accesslog.SSHRefused

	AuditJupyterLogin    = accesslog.JupyterLogin
	AuditJupyterKernel   = accesslog.JupyterKernel
	AuditJupyterTerminal = accesslog.JupyterTerminal
	AuditJupyterRefused  = accesslog.JupyterRefused
)

// sshd's LogLevel VERBOSE lines that the audit reads (OpenSSH 8 to 9; with -e, sshd writes
// the bare message, later versions may prefix the process name).
var (
	sshAccepted = regexp.MustCompile(`Accepted publickey for (\S+) from (\S+) port (\d+) ssh2: (\S+) (SHA256:[A-Za-z0-9+/=]+)`)
	sshFailed   = regexp.MustCompile(`Failed publickey for (?:invalid user )?(\S+) from (\S+) port (\d+) ssh2: (\S+) (SHA256:[A-Za-z0-9+/=]+)`)
	sshInvalid  = regexp.MustCompile(`Invalid user (\S*) from (\S+) port (\d+)`)
	sshGone     = regexp.MustCompile(`Disconnected from user (\S+) (\S+) port (\d+)`)
)

// SSHAudit turns sshd's log into audit events.
type SSHAudit struct {
	// AuthorizedKeys is the authorized_keys file sshd reads: the key comments come from it
	// at login time (keys change while the pod runs).
	AuthorizedKeys string
	Out            io.Writer
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	mu       sync.Mutex
	sessions map[string]sshSession // by remote address and port
}

type sshSession struct {
	at  time.Time
	key AuditEvent
}

// Follow reads sshd's log from r until it ends, passes every line on to log unchanged and
// writes the audit events.
func (a *SSHAudit) Follow(r io.Reader, log io.Writer) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if log != nil {
			_, _ = io.WriteString(log, line+"\n")
		}
		a.Line(line)
	}
}

// Line reads one line of sshd's log.
func (a *SSHAudit) Line(line string) {
	line = strings.TrimRight(line, "\r")
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	at := now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sessions == nil {
		a.sessions = map[string]sshSession{}
	}
	switch {
	case match(sshAccepted, line) != nil:
		m := match(sshAccepted, line)
		ev := AuditEvent{Event: AuditSSHLogin, User: m[1], Remote: remote(m[2], m[3]), KeyType: m[4], KeyFingerprint: m[5]}
		ev.KeyComment = a.comment(ev.KeyFingerprint)
		a.sessions[ev.Remote] = sshSession{at: at, key: ev}
		a.write(at, ev)
	case match(sshFailed, line) != nil:
		m := match(sshFailed, line)
		ev := AuditEvent{Event: AuditSSHRefused, User: m[1], Remote: remote(m[2], m[3]), KeyType: m[4], KeyFingerprint: m[5],
			Reason: "key not in authorized_keys"}
		ev.KeyComment = a.comment(ev.KeyFingerprint)
		if ev.KeyComment != "" {
			ev.Reason = "key refused (in authorized_keys, but not for this user or these options)"
		}
		a.write(at, ev)
	case match(sshInvalid, line) != nil:
		m := match(sshInvalid, line)
		a.write(at, AuditEvent{Event: AuditSSHRefused, User: m[1], Remote: remote(m[2], m[3]),
			Reason: "no such user: only the container's own user may log in"})
	case match(sshGone, line) != nil:
		m := match(sshGone, line)
		addr := remote(m[2], m[3])
		s, ok := a.sessions[addr]
		if !ok {
			return
		}
		delete(a.sessions, addr)
		ev := s.key
		ev.Event = AuditSSHLogout
		secs := at.Sub(s.at).Seconds()
		ev.SessionSeconds = &secs
		a.write(at, ev)
	}
}

func match(re *regexp.Regexp, line string) []string { return re.FindStringSubmatch(line) }

func remote(addr, port string) string {
	if _, err := strconv.Atoi(port); err != nil {
		return addr
	}
	if strings.Contains(addr, ":") {
		return "[" + addr + "]:" + port
	}
	return addr + ":" + port
}

// comment finds the comment of the key with fingerprint fp in authorized_keys.
func (a *SSHAudit) comment(fp string) string {
	data, err := os.ReadFile(a.AuthorizedKeys)
	if err != nil {
		return ""
	}
	for len(data) > 0 {
		key, comment, _, rest, err := ssh.ParseAuthorizedKey(data)
		if err != nil {
			break
		}
		if ssh.FingerprintSHA256(key) == fp {
			return comment
		}
		data = rest
	}
	return ""
}

func (a *SSHAudit) write(at time.Time, ev AuditEvent) {
	if a.Out != nil {
		_, _ = a.Out.Write(accesslog.Line(at, ev))
	}
}

// The Jupyter server's INFO and WARNING lines that the audit reads (jupyter_server 1.x and
// 2.x). A request refused for want of the token is logged as "403 METHOD PATH (ADDR)"; the
// query, which may hold a (wrong) token, is never copied.
var (
	jupyterKernel   = regexp.MustCompile(`Kernel started: ([0-9a-f-]+)(?:, name: (\S+))?`)
	jupyterTerminal = regexp.MustCompile(`New terminal with (?:automatic |specified )?name: (\S+)`)
	jupyterRefused  = regexp.MustCompile(`\] 403 ([A-Z]+) ([^?\s]+)\S* \(([^)]*)\)`)
	jupyterLogin    = regexp.MustCompile(regexp.QuoteMeta(access.JupyterLoginLog) + ` (\S+)`)
)

// JupyterAudit turns the Jupyter server's log into audit events.
type JupyterAudit struct {
	Out io.Writer
	Now func() time.Time
}

// Follow reads the server's log from r until it ends, passes every line on to log and
// writes the audit events.
func (a *JupyterAudit) Follow(r io.Reader, log io.Writer) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if log != nil {
			_, _ = io.WriteString(log, Redact(line)+"\n")
		}
		a.Line(line)
	}
}

// tokenInURL is a token in a URL's query as Jupyter logs it: jupyter_server 1.x writes the
// whole URI of every redirected or failed request ("404 GET /tree?token=…"), the right
// token included, and a Referer that may carry it.
var tokenInURL = regexp.MustCompile(`(?i)(token(?:=|%3D))[^&\s'"()]*`)

// Redact removes tokens from a line of the Jupyter server's log before it reaches the
// container's log, which anyone with pods/log can read.
func Redact(line string) string { return tokenInURL.ReplaceAllString(line, "${1}[redacted]") }

// Line reads one line of the server's log.
func (a *JupyterAudit) Line(line string) {
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	var ev AuditEvent
	switch {
	case match(jupyterLogin, line) != nil:
		ev = AuditEvent{Event: AuditJupyterLogin, Remote: match(jupyterLogin, line)[1]}
	case match(jupyterKernel, line) != nil:
		m := match(jupyterKernel, line)
		ev = AuditEvent{Event: AuditJupyterKernel, Kernel: strings.TrimSuffix(m[1]+" "+m[2], " ")}
	case match(jupyterTerminal, line) != nil:
		ev = AuditEvent{Event: AuditJupyterTerminal, Terminal: match(jupyterTerminal, line)[1]}
	case match(jupyterRefused, line) != nil:
		m := match(jupyterRefused, line)
		ev = AuditEvent{Event: AuditJupyterRefused, Request: m[1] + " " + m[2], Remote: m[3], Reason: "no valid token"}
	default:
		return
	}
	if a.Out != nil {
		_, _ = a.Out.Write(accesslog.Line(now(), ev))
	}
}
