package plugin

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	streamhttp "k8s.io/streaming/pkg/httpstream"
)

// stableAfter is how long a connection must last for the backoff to start over.
const stableAfter = 10 * time.Second

// dialFunc finds the environment's running pod and opens a port-forward connection to it.
type dialFunc func(ctx context.Context) (streamhttp.Connection, *corev1.Pod, error)

// Tunnel keeps one port-forward connection to an environment's pod up for as long as its
// context lives. When the connection drops (pod restarted or replaced, network blip, the
// kubelet's streaming idle timeout, an API server restart) it finds the pod again and
// re-dials with backoff. Local listeners stay open throughout: a client that connects
// while the tunnel is down waits for it instead of being refused.
type Tunnel struct {
	dial  dialFunc
	watch func(ctx context.Context, pod *corev1.Pod, gone func())
	// pause waits before the next attempt: up to the backoff's delay, less if the pod
	// becomes ready sooner (waitPodReady); plain sleep when nil.
	pause   func(ctx context.Context, d time.Duration)
	log     io.Writer
	backoff *Backoff
	// Connected, if set, is called each time a connection is up (tests, logs).
	Connected func(pod *corev1.Pod)

	mu    sync.Mutex
	conn  streamhttp.Connection
	ready chan struct{} // closed when conn is set
	gone  chan struct{} // closed when conn is dropped
	reqID atomic.Int64
}

func newTunnel(c *clients, name string, log io.Writer) *Tunnel {
	return &Tunnel{
		dial: func(ctx context.Context) (streamhttp.Connection, *corev1.Pod, error) {
			pod, err := c.runningPod(ctx, name)
			if err != nil {
				return nil, nil, err
			}
			conn, err := c.dialPod(pod)
			return conn, pod, err
		},
		watch:   c.watchPod,
		pause:   func(ctx context.Context, d time.Duration) { c.waitPodReady(ctx, name, d) },
		log:     log,
		backoff: DefaultBackoff(),
		ready:   make(chan struct{}),
	}
}

// Run keeps the connection up until ctx ends.
func (t *Tunnel) Run(ctx context.Context) {
	for ctx.Err() == nil {
		conn, pod, err := t.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d := t.backoff.Next()
			fmt.Fprintf(t.log, "cannot reach the environment: %v; retrying in %s\n", err, d.Round(100*time.Millisecond))
			t.wait(ctx, d)
			continue
		}
		t.up(conn, pod)
		started := time.Now()
		watchCtx, stopWatch := context.WithCancel(ctx)
		go t.watch(watchCtx, pod, func() { _ = conn.Close() })
		select {
		case <-ctx.Done():
		case <-conn.CloseChan():
		}
		stopWatch()
		t.down(conn)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > stableAfter {
			t.backoff.Reset()
		}
		d := t.backoff.Next()
		fmt.Fprintf(t.log, "lost the connection to pod %s; reconnecting in %s\n", pod.Name, d.Round(100*time.Millisecond))
		t.wait(ctx, d)
	}
}

// wait pauses before the next attempt (see pause).
func (t *Tunnel) wait(ctx context.Context, d time.Duration) {
	if t.pause == nil {
		sleep(ctx, d)
		return
	}
	t.pause(ctx, d)
}

func (t *Tunnel) up(conn streamhttp.Connection, pod *corev1.Pod) {
	t.mu.Lock()
	t.conn = conn
	t.gone = make(chan struct{})
	close(t.ready)
	t.mu.Unlock()
	fmt.Fprintf(t.log, "connected to pod %s\n", pod.Name)
	if t.Connected != nil {
		t.Connected(pod)
	}
}

func (t *Tunnel) down(conn streamhttp.Connection) {
	_ = conn.Close()
	t.mu.Lock()
	t.conn = nil
	t.ready = make(chan struct{})
	close(t.gone)
	t.mu.Unlock()
}

// connection waits for the tunnel to be up with a connection other than stale.
func (t *Tunnel) connection(ctx context.Context, stale streamhttp.Connection) (streamhttp.Connection, error) {
	for {
		t.mu.Lock()
		conn, wait := t.conn, t.ready
		if conn != nil && conn == stale {
			wait = t.gone
		}
		t.mu.Unlock()
		if conn != nil && conn != stale {
			return conn, nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// stream opens a stream to port, on the next connection if the current one turns out to
// be broken (it dropped and Run has not noticed yet).
func (t *Tunnel) stream(ctx context.Context, port int) (*podStream, error) {
	var stale streamhttp.Connection
	for {
		conn, err := t.connection(ctx, stale)
		if err != nil {
			return nil, err
		}
		s, err := openStream(conn, port, int(t.reqID.Add(1)))
		if err == nil {
			return s, nil
		}
		_ = conn.Close() // Run sees it close and dials again
		stale = conn
	}
}

// Serve forwards every connection accepted on l to port in the pod, until ctx ends.
func (t *Tunnel) Serve(ctx context.Context, l net.Listener, port int) error {
	go func() {
		<-ctx.Done()
		_ = l.Close()
	}()
	for {
		local, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		go t.forward(ctx, local, port)
	}
}

// connectionWait is how long a local client waits for the tunnel to come back.
const connectionWait = 2 * time.Minute

func (t *Tunnel) forward(ctx context.Context, local net.Conn, port int) {
	defer local.Close()
	waitCtx, cancel := context.WithTimeout(ctx, connectionWait)
	defer cancel()
	s, err := t.stream(waitCtx, port)
	if err != nil {
		fmt.Fprintf(t.log, "port %d: no connection to the pod within %s\n", port, connectionWait)
		return
	}
	if err := s.pipe(local); err != nil {
		fmt.Fprintf(t.log, "port %d: %v\n", port, err)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
}
