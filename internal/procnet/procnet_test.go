package procnet

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

func TestParseKernelFormat(t *testing.T) {
	dir := t.TempDir()
	_ = os.Mkdir(filepath.Join(dir, "net"), 0o755)
	tcp := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:08AE 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 100 0 0 10 0
   1: 0100007F:08AE 0100007F:C350 01 00000000:00000000 02:0000A2B5 00000000  1000        0 2 2 0 20 4 30 10 -1
   2: 0100007F:C350 0100007F:08AE 01 00000000:00000000 02:0000A2B5 00000000     0        0 3 2 0 20 4 30 10 -1
`
	tcp6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:22B8 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0 100 0 0 10 0
`
	_ = os.WriteFile(filepath.Join(dir, "net", "tcp"), []byte(tcp), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "net", "tcp6"), []byte(tcp6), 0o644)
	socks, err := TCP(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(socks) != 4 {
		t.Fatalf("%d sockets, want 4", len(socks))
	}
	if want := netip.MustParseAddrPort("127.0.0.1:2222"); socks[0].Local != want || socks[0].State != Listen || socks[0].UID != 1000 {
		t.Errorf("row 0 = %+v, want %v listening, uid 1000", socks[0], want)
	}
	if want := netip.MustParseAddrPort("127.0.0.1:50000"); socks[1].Remote != want {
		t.Errorf("row 1 remote = %v, want %v", socks[1].Remote, want)
	}
	if want := netip.MustParseAddrPort("[::1]:8888"); socks[3].Local != want {
		t.Errorf("tcp6 row = %v, want %v", socks[3].Local, want)
	}
	// The server side of a session counts, the client side (remote port 2222) does not.
	if n := Count(socks, Established, 2222); n != 1 {
		t.Errorf("%d established on local port 2222, want 1", n)
	}
}

// The kernel's own table shows a connection this test makes.
func TestReadsRealTable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	socks, err := TCP("/proc")
	if err != nil {
		t.Fatal(err)
	}
	if Count(socks, Listen, port) != 1 || Count(socks, Established, port) != 1 {
		t.Fatalf("port %d: %d listening, %d established; want 1 and 1", port, Count(socks, Listen, port), Count(socks, Established, port))
	}
	s.Close()
	c.Close()
}

// The idle monitor reads the TCP tables once per probe.
func BenchmarkTCP(b *testing.B) {
	for b.Loop() {
		if _, err := TCP("/proc"); err != nil {
			b.Fatal(err)
		}
	}
}
