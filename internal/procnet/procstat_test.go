package procnet_test

import (
	"os"
	"os/exec"
	"testing"

	"github.com/trainenv/trainenv/internal/procnet"
)

func TestParseStat(t *testing.T) {
	// A name with spaces and a ')' (comm is whatever the program set), as proc(5) shows it.
	line := "4242 (my (odd) name) R 17 4242 17 0 -1 4194304 100 0 0 0 250 30 12 8 20 0 1 0 98765 1000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0\n"
	p, err := procnet.ParseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	want := procnet.Process{PID: 4242, PPID: 17, Comm: "my (odd) name", State: 'R', StartTicks: 98765, CPUTicks: 250 + 30 + 12 + 8}
	if p != want {
		t.Errorf("got %+v, want %+v", p, want)
	}
	for _, bad := range []string{"", "12 no-parens R 1", "12 (short) R 1 2 3", "x (a) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20"} {
		if _, err := procnet.ParseStat(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestProcessesSeesAChild reads the real /proc: a child the test starts is there with its
// parent and name.
func TestProcessesSeesAChild(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	procs, err := procnet.Processes("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if p.PID == cmd.Process.Pid {
			if p.PPID != os.Getpid() || p.Comm != "sleep" || p.StartTicks == 0 {
				t.Errorf("child read as %+v", p)
			}
			return
		}
	}
	t.Errorf("pid %d not among %d processes", cmd.Process.Pid, len(procs))
}
