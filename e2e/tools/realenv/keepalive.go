package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// nat stands for what sits between a user and the cluster in real life (a NAT gateway, a
// load balancer) and cuts TCP connections that carry nothing for a while: a proxy on
// loopback in front of the API server that closes any connection idle for cut.
type nat struct {
	l      net.Listener
	target string
	cut    time.Duration
	cuts   atomic.Int64
	wg     sync.WaitGroup
	// verbose: say each cut (connection age, bytes carried, longest gap before).
	verbose atomic.Bool
}

func startNAT(target string, cut time.Duration) (*nat, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	n := &nat{l: l, target: target, cut: cut}
	n.wg.Add(1)
	go n.serve()
	return n, nil
}

func (n *nat) addr() string { return n.l.Addr().String() }

func (n *nat) close() {
	_ = n.l.Close()
	n.wg.Wait()
}

func (n *nat) serve() {
	defer n.wg.Done()
	for {
		c, err := n.l.Accept()
		if err != nil {
			return
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.relay(c)
		}()
	}
}

// relay copies both ways and closes both ends once neither direction carried a byte for cut.
func (n *nat) relay(c net.Conn) {
	defer c.Close()
	u, err := net.Dial("tcp", n.target)
	if err != nil {
		return
	}
	defer u.Close()
	var last, bytes, maxGap atomic.Int64
	opened := time.Now()
	last.Store(opened.UnixNano())
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			k, err := src.Read(buf)
			if k > 0 {
				now := time.Now().UnixNano()
				if gap := now - last.Swap(now); gap > maxGap.Load() {
					maxGap.Store(gap)
				}
				bytes.Add(int64(k))
				if _, err := dst.Write(buf[:k]); err != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}
	go pipe(u, c)
	go pipe(c, u)
	tick := time.NewTicker(n.cut / 10)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			if time.Since(time.Unix(0, last.Load())) >= n.cut {
				n.cuts.Add(1)
				if n.verbose.Load() {
					fmt.Printf("e2e realenv:     NAT: cut a connection idle for %s, open %s, %d bytes, longest gap before %s\n",
						n.cut, since(opened), bytes.Load(), time.Duration(maxGap.Load()).Round(10*time.Millisecond))
				}
				return // the deferred closes end both pipes
			}
		}
	}
}

// natKubeconfig writes a kubeconfig that reaches the API server through the NAT, verifying
// its certificate for the original host name.
func (r *run) natKubeconfig(ctx context.Context) (string, *nat, error) {
	raw, err := r.k.run(ctx, "config", "view", "--raw", "--minify", "--flatten", "-o", "json")
	if err != nil {
		return "", nil, err
	}
	server, err := r.k.run(ctx, "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}")
	if err != nil {
		return "", nil, err
	}
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" {
		return "", nil, fmt.Errorf("the API server %q is not an https URL", server)
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "443")
	}
	n, err := startNAT(target, r.o.natIdleCut)
	if err != nil {
		return "", nil, err
	}
	file := filepath.Join(r.work, "nat.kubeconfig")
	content := strings.Replace(raw, `"server": "`+server+`"`, `"server": "https://`+n.addr()+`", "tls-server-name": "`+u.Hostname()+`"`, 1)
	if content == raw {
		n.close()
		return "", nil, fmt.Errorf("could not point the kubeconfig at the NAT")
	}
	if err := writeFile(file, content); err != nil {
		n.close()
		return "", nil, err
	}
	return file, n, nil
}

// checkKeepAlive: an SSH session (ssh-config's ProxyCommand) and a Jupyter kernel's
// websocket (connect) stay up through an idle period longer than the NAT's idle cut, and
// work after it. First it proves the NAT cuts: an idle TLS connection to the API server
// through it is closed after the cut.
func (r *run) checkKeepAlive(ctx context.Context) error {
	kc, n, err := r.natKubeconfig(ctx)
	if err != nil {
		return err
	}
	defer n.close()
	if r.o.idle <= r.o.natIdleCut {
		return fmt.Errorf("--idle %s must be longer than --nat-idle-cut %s", r.o.idle, r.o.natIdleCut)
	}
	// sshd counts ClientAliveInterval from its last wake-up, not from the last byte, so
	// the silence between two keep-alives reaches twice the interval (seen here: a 5 s
	// interval did not carry a session through an 8 s cut, and did through 15 s).
	if r.o.natIdleCut <= 2*keepAlivePeriod*time.Second {
		return fmt.Errorf("--nat-idle-cut %s must be longer than twice the keep-alive interval (%d s)", r.o.natIdleCut, keepAlivePeriod)
	}
	cutAfter, err := idleConnectionCut(ctx, n.addr(), 4*r.o.natIdleCut)
	if err != nil {
		return err
	}
	cutsBefore := n.cuts.Load()
	n.verbose.Store(true)

	// The Jupyter websocket, through connect over the NAT.
	b, u, _, err := r.startConnect(ctx, "connect-nat", []string{"KUBECONFIG=" + kc})
	if err != nil {
		return err
	}
	defer b.stop()
	base := jupyterBase(u)
	if err := poll(ctx, time.Minute, 200*time.Millisecond, "Jupyter through connect over the NAT", func() (bool, string, error) {
		code, body, err := httpGet(ctx, base+"api/status", r.token)
		if err != nil {
			return false, err.Error(), nil
		}
		return code == 200, fmt.Sprintf("%d %s", code, body), nil
	}); err != nil {
		return err
	}
	k, err := startKernel(ctx, base, r.token)
	if err != nil {
		return err
	}
	defer k.close(ctx)
	if out, err := k.execute(ctx, "x = 6 * 7; print('before', x)", time.Minute); err != nil || out != "before 42\n" {
		return fmt.Errorf("the kernel before the idle period: %s", outcome(err, out))
	}

	// The SSH session, through ssh-proxy over the NAT: a shell that waits for a line.
	opts, err := r.sshConfig(ctx, filepath.Join(r.work, "ssh_config_nat"), kc)
	if err != nil {
		return err
	}
	s, err := startSession(r.k.env, opts, r.o.name)
	if err != nil {
		return err
	}
	defer s.stop()

	fmt.Printf("e2e realenv:   the NAT cut an idle connection after %s; the kubelet's streamingConnectionIdleTimeout is %s; now idle for %s (SSH ClientAlive and Jupyter pings every %d s)\n",
		cutAfter.Round(100*time.Millisecond), r.kubeletIdleTimeout(ctx), r.o.idle, keepAlivePeriod)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(r.o.idle):
	}

	if err := s.roundTrip("after the idle period", 30*time.Second); err != nil {
		return fmt.Errorf("the SSH session after %s idle: %w", r.o.idle, err)
	}
	out, err := k.execute(ctx, "print('after', x)", time.Minute)
	if err != nil || out != "after 42\n" {
		return fmt.Errorf("the Jupyter websocket after %s idle (the kernel should still hold x): %s", r.o.idle, outcome(err, out))
	}
	if strings.Contains(b.stderr(), "lost the connection") {
		return fmt.Errorf("connect lost its tunnel during the idle period: %s", b.stderr())
	}
	r.record("idle survived", r.o.idle)
	fmt.Printf("e2e realenv:   after %s idle: the SSH session answered, the kernel still held x = 42 over the same websocket (the NAT cut %d connection(s) meanwhile)\n",
		r.o.idle, n.cuts.Load()-cutsBefore)
	return nil
}

// idleConnectionCut opens a TLS connection through the NAT, sends nothing, and returns how
// long it took the NAT to close it.
func idleConnectionCut(ctx context.Context, addr string, limit time.Duration) (time.Duration, error) {
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}} // #nosec G402 -- only the connection's lifetime is observed
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, fmt.Errorf("dialing the API server through the NAT: %w", err)
	}
	defer c.Close()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(limit))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return 0, fmt.Errorf("the NAT did not cut an idle connection within %s: the keep-alive check would prove nothing", limit)
	}
	return time.Since(start), nil
}

// session is an interactive ssh session: a remote shell loop that echoes each line.
type session struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
	out   strings.Builder
	mu    sync.Mutex
}

func startSession(env, opts []string, host string) (*session, error) {
	c := exec.Command("ssh", append(opts, host, `while read -r l; do echo "pong $l $(id -u)"; done`)...)
	c.Env = env
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	in, err := c.StdinPipe()
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	c.Stdout, c.Stderr = pw, pw
	if err := c.Start(); err != nil {
		return nil, err
	}
	s := &session{cmd: c, in: in, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.mu.Lock()
			s.out.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			s.lines <- sc.Text()
		}
	}()
	go func() {
		_ = c.Wait()
		_ = pw.Close()
	}()
	if err := s.roundTrip("at the start", time.Minute); err != nil {
		s.stop()
		return nil, fmt.Errorf("the SSH session: %w", err)
	}
	return s, nil
}

// roundTrip sends a line and waits for the remote shell's answer.
func (s *session) roundTrip(tag string, timeout time.Duration) error {
	word := strings.ReplaceAll(tag, " ", "-")
	if _, err := fmt.Fprintln(s.in, word); err != nil {
		return fmt.Errorf("writing to the session: %w (%s)", err, s.output())
	}
	deadline := time.After(timeout)
	for {
		select {
		case l := <-s.lines:
			if l == "pong "+word+" 1000" {
				return nil
			}
		case <-deadline:
			return fmt.Errorf("no answer within %s; the session printed: %s", timeout, s.output())
		}
	}
}

func (s *session) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return tail(s.out.String(), 10)
}

func (s *session) stop() {
	_ = s.in.Close()
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
}

// kubeletIdleTimeout reads the real node's streamingConnectionIdleTimeout from its
// configz (through the API server), for the record: a test cluster shortens it below the
// idle period so that the port-forward's idle cut is exercised too.
func (r *run) kubeletIdleTimeout(ctx context.Context) string {
	out, err := r.k.run(ctx, "get", "--raw", "/api/v1/nodes/"+r.realNode+"/proxy/configz")
	if err != nil {
		return "unknown (" + firstLine(err.Error()) + ")"
	}
	var c struct {
		KubeletConfig struct {
			StreamingConnectionIdleTimeout string `json:"streamingConnectionIdleTimeout"`
		} `json:"kubeletconfig"`
	}
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.KubeletConfig.StreamingConnectionIdleTimeout == "" {
		return "unknown"
	}
	return c.KubeletConfig.StreamingConnectionIdleTimeout
}
