package procnet

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// TicksPerSecond is USER_HZ, the unit of the CPU times in /proc/PID/stat. It is 100 on
// every Linux architecture Kubernetes runs on (the kernel fixes it for user space; only the
// internal HZ varies), so it is not read with sysconf, which a static binary cannot call.
const TicksPerSecond = 100

// Process is one process's CPU account, from /proc/PID/stat.
type Process struct {
	PID, PPID int
	// Comm is the kernel's name of the process (the executable's base name, 15 bytes at most).
	Comm string
	// State is proc(5)'s state letter: 'R' running or waiting for a CPU, 'S' sleeping, ...
	State byte
	// StartTicks is when the process started, in ticks after boot: with PID, its identity
	// (a PID is reused only by a process that started later).
	StartTicks uint64
	// CPUTicks is the user and system time of the process and of the children it has
	// waited for (utime + stime + cutime + cstime): a shell loop running short-lived
	// programs is charged with their work once it reaps them.
	CPUTicks uint64
}

// Processes reads the stat of every process in procDir ("/proc": the caller's PID
// namespace, the container's). A process that ends while it is read is skipped.
func Processes(procDir string) ([]Process, error) {
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return nil, err
	}
	var out []Process
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(procDir, e.Name(), "stat"))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			continue
		}
		if err != nil {
			return nil, err
		}
		p, err := ParseStat(string(data))
		if err != nil {
			return nil, fmt.Errorf("%s/%s/stat: %w", procDir, e.Name(), err)
		}
		out = append(out, p)
	}
	return out, nil
}

// ParseStat parses one /proc/PID/stat line (proc(5)). The name is in parentheses and may
// itself hold spaces and parentheses, so the fields are counted from its last ')'.
func ParseStat(line string) (Process, error) {
	open, end := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
	if open < 0 || end < open {
		return Process{}, fmt.Errorf("no (comm) in %q", line)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line[:open]))
	if err != nil {
		return Process{}, fmt.Errorf("pid: %w", err)
	}
	// Fields after the name, from 3 (state) on: ppid is field 4, utime..cstime 14-17,
	// starttime 22.
	f := strings.Fields(line[end+1:])
	if len(f) < 20 {
		return Process{}, fmt.Errorf("%d fields after the name, want at least 20", len(f))
	}
	field := func(n int) (uint64, error) { return strconv.ParseUint(f[n-3], 10, 64) }
	p := Process{PID: pid, Comm: line[open+1 : end], State: f[0][0]}
	ppid, err := field(4)
	if err != nil {
		return Process{}, fmt.Errorf("ppid: %w", err)
	}
	p.PPID = int(ppid)
	for n := 14; n <= 17; n++ {
		v, err := field(n)
		if err != nil {
			return Process{}, fmt.Errorf("field %d: %w", n, err)
		}
		p.CPUTicks += v
	}
	if p.StartTicks, err = field(22); err != nil {
		return Process{}, fmt.Errorf("starttime: %w", err)
	}
	return p, nil
}
