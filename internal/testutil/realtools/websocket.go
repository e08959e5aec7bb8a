package realtools

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// CountPings opens a websocket to the server at addr (host:port) and counts the ping
// frames it receives until the deadline, answering each with a pong as a browser does.
// Just enough of RFC 6455 to observe a server's keep-alive.
func CountPings(addr, path string, header http.Header, until time.Time) (int, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(until)
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header = header.Clone()
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(key))
	req.Header.Set("Sec-WebSocket-Version", "13")
	if err := req.Write(c); err != nil {
		return 0, err
	}
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close() // a 101 has no body: the frames follow on r
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return 0, fmt.Errorf("websocket handshake: %s", resp.Status)
	}
	pings := 0
	for {
		opcode, err := readFrame(r)
		if err != nil {
			if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
				return pings, nil
			}
			return pings, err
		}
		switch opcode {
		case 0x9: // ping: answer with an empty, masked pong
			pings++
			if _, err := c.Write([]byte{0x8A, 0x80, 1, 2, 3, 4}); err != nil {
				return pings, err
			}
		case 0x8:
			return pings, fmt.Errorf("server closed the websocket")
		}
	}
}

// readFrame reads one unmasked server frame and returns its opcode.
func readFrame(r *bufio.Reader) (byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if h[1]&0x80 != 0 {
		n += 4 // a mask key (servers send none)
	}
	_, err := io.CopyN(io.Discard, r, int64(n))
	return h[0] & 0x0f, err
}
