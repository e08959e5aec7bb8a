package plugin

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	streamhttp "k8s.io/streaming/pkg/httpstream"
	spdyserver "k8s.io/streaming/pkg/httpstream/spdy"
)

// kubeletStub serves the kubelet's side of port-forward over real SPDY: each data stream is
// forwarded to target; the paired error stream is closed when it ends. drop() closes every
// connection, as a restarted pod or API server would.
type kubeletStub struct {
	target string
	dials  atomic.Int32
	mu     sync.Mutex
	conns  []streamhttp.Connection
	errs   map[string]streamhttp.Stream
}

func (k *kubeletStub) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if _, err := streamhttp.Handshake(req, w, []string{portforward.PortForwardProtocolV1Name}); err != nil {
		return
	}
	k.dials.Add(1)
	conn := spdyserver.NewResponseUpgrader().UpgradeResponse(w, req, func(s streamhttp.Stream, _ <-chan struct{}) error {
		id := s.Headers().Get(corev1.PortForwardRequestIDHeader)
		k.mu.Lock()
		defer k.mu.Unlock()
		if s.Headers().Get(corev1.StreamType) == corev1.StreamTypeError {
			k.errs[id] = s
			return nil
		}
		go k.forward(id, s)
		return nil
	})
	if conn == nil {
		return
	}
	k.mu.Lock()
	k.conns = append(k.conns, conn)
	k.mu.Unlock()
	<-conn.CloseChan()
}

func (k *kubeletStub) forward(id string, data streamhttp.Stream) {
	defer func() {
		k.mu.Lock()
		if e := k.errs[id]; e != nil {
			_ = e.Close()
		}
		k.mu.Unlock()
	}()
	defer func() { _ = data.Close() }()
	target, err := net.Dial("tcp", k.target)
	if err != nil {
		return
	}
	defer target.Close()
	go func() { _, _ = io.Copy(target, data) }()
	_, _ = io.Copy(data, target)
}

func (k *kubeletStub) drop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, c := range k.conns {
		_ = c.Close()
	}
	k.conns = nil
}

// echoServer answers each line with the same line.
func echoServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return l.Addr().String()
}

func roundTrip(t *testing.T, addr, line string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		t.Fatal(err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading through the tunnel: %v", err)
	}
	return strings.TrimSpace(got)
}

// The tunnel forwards over real SPDY streams, and when the connection drops it dials again
// by itself while the local port stays open.
func TestTunnelReconnectsWhenTheConnectionDrops(t *testing.T) {
	stub := &kubeletStub{target: echoServer(t), errs: map[string]streamhttp.Stream{}}
	srv := httptest.NewServer(stub)
	t.Cleanup(srv.Close)
	t.Cleanup(stub.drop)
	u, _ := url.Parse(srv.URL + "/portforward")
	transport, upgrader, err := spdy.RoundTripperFor(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "alice-0"}}
	var logs bytes.Buffer
	var logMu sync.Mutex
	tun := &Tunnel{
		dial: func(context.Context) (streamhttp.Connection, *corev1.Pod, error) {
			conn, _, err := spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: transport}, http.MethodPost, u).Dial(portforward.PortForwardProtocolV1Name)
			return conn, pod, err
		},
		watch:   func(context.Context, *corev1.Pod, func()) {},
		log:     lockedWriter{&logMu, &logs},
		backoff: &Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, Factor: 2},
		ready:   make(chan struct{}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go tun.Run(ctx)
	go func() { _ = tun.Serve(ctx, l, 2222) }()

	if got := roundTrip(t, l.Addr().String(), "hello"); got != "hello" {
		t.Fatalf("echo %q", got)
	}
	for i := range 3 {
		stub.drop()
		// The next client may arrive while the tunnel is down: it waits, it is not refused.
		if got := roundTrip(t, l.Addr().String(), "again"); got != "again" {
			t.Fatalf("after drop %d: echo %q", i+1, got)
		}
	}
	if n := stub.dials.Load(); n != 4 {
		t.Fatalf("%d dials, want 4 (one, then one per drop)", n)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if c := strings.Count(logs.String(), "lost the connection to pod alice-0"); c != 3 {
		t.Fatalf("logged %d reconnections, want 3:\n%s", c, logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
