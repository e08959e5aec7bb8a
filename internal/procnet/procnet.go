// Package procnet reads what the entrypoint learns about the environment from /proc: the
// kernel's TCP socket tables (/proc/net/tcp and tcp6: which sockets listen where, which
// connections are established), from which it counts SSH sessions and tests check that
// servers listen on loopback only; and each process's CPU time (/proc/PID/stat), from which
// it sees work in progress.
package procnet

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// State is a TCP socket state as the kernel numbers it (include/net/tcp_states.h).
type State uint8

// The states trainenv looks for.
const (
	Established State = 0x01 // a connection in use
	Listen      State = 0x0A // a listening socket
)

// Socket is one row of a TCP table.
type Socket struct {
	Local, Remote netip.AddrPort
	State         State
	UID           uint32
}

// TCP reads procDir/net/tcp and procDir/net/tcp6 ("/proc" for the caller's network
// namespace). A kernel without IPv6 has no tcp6: that is not an error.
func TCP(procDir string) ([]Socket, error) {
	var all []Socket
	for _, name := range []string{"tcp", "tcp6"} {
		f, err := os.Open(filepath.Join(procDir, "net", name))
		if errors.Is(err, fs.ErrNotExist) && name == "tcp6" {
			continue
		}
		if err != nil {
			return nil, err
		}
		socks, err := parse(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name(), err)
		}
		all = append(all, socks...)
	}
	return all, nil
}

func parse(r io.Reader) ([]Socket, error) {
	var socks []Socket
	sc := bufio.NewScanner(r)
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 {
			continue
		}
		local, err := addrPort(f[1])
		if err != nil {
			return nil, err
		}
		remote, err := addrPort(f[2])
		if err != nil {
			return nil, err
		}
		st, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("state %q: %w", f[3], err)
		}
		uid, err := strconv.ParseUint(f[7], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("uid %q: %w", f[7], err)
		}
		socks = append(socks, Socket{Local: local, Remote: remote, State: State(st), UID: uint32(uid)})
	}
	return socks, sc.Err()
}

// addrPort decodes "0100007F:1F90": the address as the kernel's 32-bit words in host
// (little-endian) order, the port in big-endian hex.
func addrPort(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("address %q", s)
	}
	raw, err := hex.DecodeString(a)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("address %q", s)
	}
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %q", s)
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr, uint16(port)), nil
}

// Count returns how many sockets are in state st with local port port.
func Count(socks []Socket, st State, port uint16) int {
	n := 0
	for _, s := range socks {
		if s.State == st && s.Local.Port() == port {
			n++
		}
	}
	return n
}
