package entrypoint

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/trainenv/trainenv/internal/procnet"
)

// BusyCPU is the share of one CPU a process must use, averaged between two probes, to be
// work in progress: 5 %. The idle baseline of an environment stays far below it: a shell at
// its prompt, tmux or screen with nobody attached, an idle ipykernel answering heartbeats,
// or VS Code's server with no client use well under 1 %. Training, data preparation,
// compiling or a download use tens to hundreds of percent. A process that is running or
// waiting for a CPU when probed (state R) is busy too, whatever it got: on an oversubscribed
// node a compute-bound process may get less than its share. A process waiting on the GPU
// is seen through the GPU's utilisation instead (GPUProbe).
const BusyCPU = 0.05

// ProcessUse is a busy process: it used at least BusyCPU between two probes, or was
// running when probed.
type ProcessUse struct {
	PID  int
	Comm string
	// CPU is how many CPUs it used on average (1.5: one and a half).
	CPU float64
}

func (p ProcessUse) String() string {
	return fmt.Sprintf("%s (pid %d) at %.0f %% CPU", p.Comm, p.PID, p.CPU*100)
}

// baselineComms are processes that are part of the access services rather than work: sshd
// forks one per connection (shown as sshd, or sshd-session and sshd-auth from OpenSSH 9.8);
// a connection counts as an SSH session already.
var baselineComms = []string{"sshd", "sshd-session", "sshd-auth"}

// CPUProbe finds busy user processes from the CPU time each process used since the previous
// measurement. It counts the descendants of Root (the entrypoint: in the container, PID 1,
// so every process there, including a run under nohup or tmux that was reparented to it)
// except the idle baseline that Ignored names now: the entrypoint itself, the services it
// runs (sshd's listener, the Jupyter server) and its GPU reader. Shells, kernels and
// whatever the user started are the user's.
type CPUProbe struct {
	ProcDir string
	Root    int
	Ignored func() []int
	// MinInterval is the least real time between two measurements (DefaultCPUInterval when
	// 0): CPU time is counted in 10 ms ticks, so a shorter interval says little. A probe
	// sooner than that returns the last measurement again.
	MinInterval time.Duration
	// Now is the monotonic clock of the CPU-time deltas (time.Now when nil): CPU time is
	// real, so it is divided by real elapsed time, whatever the idle monitor's clock is.
	Now func() time.Time

	mu       sync.Mutex
	last     map[procKey]uint64
	lastAt   time.Time
	result   []ProcessUse
	measured int
}

// DefaultCPUInterval is CPUProbe's default MinInterval.
const DefaultCPUInterval = time.Second

// errFirstSample: until a second sample, nothing is known; an unknown is never idle.
var errFirstSample = errors.New("processes: first CPU sample taken, nothing to compare with yet")

type procKey struct {
	pid   int
	start uint64
}

// Busy returns the processes that used at least BusyCPU in the last measured interval.
func (p *CPUProbe) Busy() ([]ProcessUse, error) {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	at := now()
	minInterval := cmp.Or(p.MinInterval, DefaultCPUInterval)
	if p.last != nil && at.Sub(p.lastAt) < minInterval {
		if p.measured == 0 {
			return nil, errFirstSample
		}
		return slices.Clone(p.result), nil
	}
	procs, err := procnet.Processes(p.ProcDir)
	if err != nil {
		return nil, fmt.Errorf("reading processes: %w", err)
	}
	var ignored []int
	if p.Ignored != nil {
		ignored = p.Ignored()
	}
	first := p.last == nil
	elapsed := at.Sub(p.lastAt).Seconds()
	seen := make(map[procKey]uint64, len(procs))
	var busy []ProcessUse
	for _, proc := range descendants(procs, p.Root) {
		key := procKey{proc.PID, proc.StartTicks}
		seen[key] = proc.CPUTicks
		if first || slices.Contains(ignored, proc.PID) || slices.Contains(baselineComms, proc.Comm) {
			continue
		}
		// A process started since the last sample used all its CPU time in this interval.
		used := proc.CPUTicks - min(p.last[key], proc.CPUTicks)
		if cpu := float64(used) / procnet.TicksPerSecond / elapsed; cpu >= BusyCPU || proc.State == 'R' {
			busy = append(busy, ProcessUse{PID: proc.PID, Comm: proc.Comm, CPU: cpu})
		}
	}
	p.last, p.lastAt = seen, at
	if first {
		return nil, errFirstSample
	}
	slices.SortFunc(busy, func(a, b ProcessUse) int {
		if c := cmp.Compare(b.CPU, a.CPU); c != 0 {
			return c
		}
		return a.PID - b.PID
	})
	p.result = busy
	p.measured++
	return slices.Clone(busy), nil
}

// descendants are the processes below root (all of them when root is 0 or 1).
func descendants(procs []procnet.Process, root int) []procnet.Process {
	if root <= 1 {
		return procs
	}
	parent := make(map[int]int, len(procs))
	for _, p := range procs {
		parent[p.PID] = p.PPID
	}
	var out []procnet.Process
	for _, p := range procs {
		for pid, hops := p.PPID, 0; pid > 1 && hops < len(procs); pid, hops = parent[pid], hops+1 {
			if pid == root {
				out = append(out, p)
				break
			}
		}
	}
	return out
}
