package entrypoint

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trainenv/trainenv/internal/procnet"
)

// startProc starts a real process of the test in a process group of its own, and kills the
// whole group at the end: a shell's background run would otherwise outlive the test, spinning.
func startProc(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	return cmd
}

const spin = "while :; do :; done"

func pids(busy []ProcessUse) []int {
	out := make([]int, len(busy))
	for i, p := range busy {
		out[i] = p.PID
	}
	return out
}

// TestCPUProbeSeesWorkInProgress reads the real /proc: a spinning grandchild (a run started
// in the background of a shell) is busy; its waiting parent, a sleeping child and a spinning
// process of the idle baseline (Ignored) are not.
func TestCPUProbeSeesWorkInProgress(t *testing.T) {
	parent := startProc(t, "sh", "-c", "sh -c '"+spin+"' & wait")
	sleeper := startProc(t, "sleep", "600")
	baseline := startProc(t, "sh", "-c", spin)
	var worker int
	waitFor(t, "the background run to start", func() bool {
		procs, _ := procnet.Processes("/proc")
		for _, p := range procs {
			if p.PPID == parent.Process.Pid {
				worker = p.PID
			}
		}
		return worker != 0
	})

	probe := &CPUProbe{ProcDir: "/proc", Root: os.Getpid(), MinInterval: 100 * time.Millisecond,
		Ignored: func() []int { return []int{baseline.Process.Pid} }}
	if _, err := probe.Busy(); !errors.Is(err, errFirstSample) {
		t.Fatalf("first sample: %v, want errFirstSample (unknown, never idle)", err)
	}
	var busy []ProcessUse
	waitFor(t, "the background run to be seen busy", func() bool {
		var err error
		busy, err = probe.Busy()
		return err == nil && slices.Contains(pids(busy), worker)
	})
	for _, quiet := range []int{parent.Process.Pid, sleeper.Process.Pid, baseline.Process.Pid} {
		if slices.Contains(pids(busy), quiet) {
			t.Errorf("pid %d counted busy: %v", quiet, busy)
		}
	}
	if busy[0].Comm != "sh" {
		t.Errorf("the spinning shell measured as %v", busy[0])
	}
}

// TestIdleMonitorNeverStopsWhileAProcessWorks drives the monitor with a fake clock, each
// probe a fresh measurement of the real /proc, while a real process spins (nobody connected,
// as with a run under nohup): it never stops; once the process ends it stops after the
// setting, and says what it measured.
func TestIdleMonitorNeverStopsWhileAProcessWorks(t *testing.T) {
	worker := startProc(t, "sh", "-c", spin)
	clock := &fakeClock{now: t0}
	cpu := &CPUProbe{ProcDir: "/proc", Root: os.Getpid(), MinInterval: 200 * time.Millisecond}
	var killedAt time.Time
	prober := proberFunc(func(ctx context.Context) (a Activity, err error) {
		// One fake minute is one real measurement: poll until the probe has a new one.
		before := cpu.measured
		deadline := time.Now().Add(30 * time.Second)
		for a, err = (Probes{CPU: cpu}).Probe(ctx); cpu.measured == before; a, err = (Probes{CPU: cpu}).Probe(ctx) {
			if time.Now().After(deadline) {
				t.Fatal("no CPU measurement in 30s")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if killedAt.IsZero() && clock.now.Sub(t0) >= 20*time.Minute {
			_ = worker.Process.Kill()
			_ = worker.Wait()
			killedAt = clock.now
		}
		return a, err
	})
	var log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reason := IdleMonitor{Prober: prober, After: 5 * time.Minute, Every: time.Minute, Clock: clock, Log: &log}.Run(ctx)
	if killedAt.IsZero() {
		t.Fatalf("stopped after %v while the process worked: %q\n%s", clock.now.Sub(t0), reason, log.String())
	}
	if idle := clock.now.Sub(killedAt); idle < 5*time.Minute {
		t.Errorf("stopped %v after the work ended, want at least 5m", idle)
	}
	if !strings.Contains(reason, "no busy process") {
		t.Errorf("reason %q does not say what was measured", reason)
	}
	if want := "activity: busy: sh (pid " + strconv.Itoa(worker.Process.Pid) + ")"; !strings.Contains(log.String(), want) {
		t.Errorf("log does not name the busy process (%q):\n%s", want, log.String())
	}
}

type proberFunc func(context.Context) (Activity, error)

func (f proberFunc) Probe(ctx context.Context) (Activity, error) { return f(ctx) }
