package plugin

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	streamhttp "k8s.io/streaming/pkg/httpstream"
)

// dialPod opens a port-forward connection to pod as kubectl does: the websocket protocol
// first (it passes proxies and load balancers that drop SPDY), SPDY when the API server
// refuses the upgrade. One connection carries any number of forwarded TCP connections.
func (c *clients) dialPod(pod *corev1.Pod) (streamhttp.Connection, error) {
	u := c.kube.CoreV1().RESTClient().Post().
		Resource("pods").Namespace(pod.Namespace).Name(pod.Name).SubResource("portforward").URL()
	transport, upgrader, err := spdy.RoundTripperFor(c.config)
	if err != nil {
		return nil, err
	}
	dialer := spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)
	websocket, err := portforward.NewSPDYOverWebsocketDialerForStreaming(u, c.config)
	if err != nil {
		return nil, err
	}
	dialer = portforward.NewFallbackDialerForStreaming(websocket, dialer, func(err error) bool {
		return streamhttp.IsUpgradeFailure(err) || streamhttp.IsHTTPSProxyError(err)
	})
	conn, protocol, err := dialer.Dial(portforward.PortForwardProtocolV1Name)
	if err != nil {
		return nil, fmt.Errorf("port-forward to pod %s: %w", pod.Name, err)
	}
	if protocol != portforward.PortForwardProtocolV1Name {
		_ = conn.Close()
		return nil, fmt.Errorf("port-forward to pod %s: the server speaks %q, not %q", pod.Name, protocol, portforward.PortForwardProtocolV1Name)
	}
	return conn, nil
}

// podStream is one forwarded TCP connection to a port of the pod: a data stream and an
// error stream on the shared connection, paired by request id, as the kubelet expects.
type podStream struct {
	conn streamhttp.Connection
	data streamhttp.Stream
	errs streamhttp.Stream
	// remoteErr receives the error stream's message (nil when empty) once it closes.
	remoteErr chan error
}

func openStream(conn streamhttp.Connection, port, requestID int) (*podStream, error) {
	headers := http.Header{}
	headers.Set(corev1.StreamType, corev1.StreamTypeError)
	headers.Set(corev1.PortHeader, strconv.Itoa(port))
	headers.Set(corev1.PortForwardRequestIDHeader, strconv.Itoa(requestID))
	errs, err := conn.CreateStream(headers)
	if err != nil {
		return nil, fmt.Errorf("creating the error stream: %w", err)
	}
	_ = errs.Close() // the client never writes to it
	s := &podStream{conn: conn, errs: errs, remoteErr: make(chan error, 1)}
	go func() {
		msg, err := io.ReadAll(errs)
		switch {
		case err != nil:
			s.remoteErr <- fmt.Errorf("reading the error stream: %w", err)
		case len(msg) > 0:
			s.remoteErr <- errors.New(string(msg))
		default:
			s.remoteErr <- nil
		}
	}()
	headers.Set(corev1.StreamType, corev1.StreamTypeData)
	if s.data, err = conn.CreateStream(headers); err != nil {
		conn.RemoveStreams(errs)
		return nil, fmt.Errorf("creating the data stream: %w", err)
	}
	return s, nil
}

// pipe copies between local and the pod until the pod's side ends or local fails; local
// reaching EOF half-closes the stream, as a TCP client's shutdown would. It returns what
// the kubelet reported on the error stream (e.g. nothing listens on the port).
func (s *podStream) pipe(local io.ReadWriter) error {
	defer s.conn.RemoveStreams(s.data, s.errs)
	remoteDone := make(chan struct{})
	go func() {
		_, _ = io.Copy(local, s.data)
		close(remoteDone)
	}()
	localFailed := make(chan struct{})
	go func() {
		if _, err := io.Copy(s.data, local); err != nil {
			close(localFailed)
			return
		}
		_ = s.data.Close()
	}()
	select {
	case <-remoteDone:
	case <-localFailed:
	}
	// Reset before reading the error stream: unsent data must not hold it up.
	_ = s.data.Reset()
	return <-s.remoteErr
}
