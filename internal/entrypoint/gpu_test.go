package entrypoint

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	"github.com/trainenv/trainenv/internal/gpufacts"
)

// reader writes a GPU reader that prints out and exits with code.
func reader(t *testing.T, out string, code int) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "reader")
	script := "#!/bin/sh\ncat <<'EOF'\n" + out + "\nEOF\nexit " + string(rune('0'+code)) + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return []string{path, gpufacts.ActivityCommand}
}

func TestGPUProbe(t *testing.T) {
	var started []int
	p := &GPUProbe{Command: reader(t, `{"gpus": [{"index": 0, "uuid": "GPU-a", "utilization": 97, "processes": 1}, {"index": 1, "uuid": "GPU-b", "utilization": 0, "processes": 0}]}`, 0),
		Started: func(pid int) { started = append(started, pid) }}
	gpus, err := p.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(gpus) != 2 || !gpus[0].Busy() || gpus[1].Busy() || len(started) != 1 {
		t.Fatalf("read %+v (reader pids %v)", gpus, started)
	}
	a := Activity{GPUs: gpus}
	if got, want := a.String(), "busy: 1 process using GPU 0 at 97 %"; got != want {
		t.Errorf("activity %q, want %q", got, want)
	}

	// Anything but a report is unknown, never idle.
	for name, cmd := range map[string][]string{
		"reader error":   reader(t, `{"gpus": [], "error": "NVML init: Driver Not Loaded"}`, 1),
		"no output":      reader(t, ``, 0),
		"killed":         reader(t, `{"gpus": [{"index": 0`, 9),
		"missing reader": {filepath.Join(t.TempDir(), "nothing-here")},
	} {
		if _, err := (&GPUProbe{Command: cmd}).Read(context.Background()); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	_, err = Probes{GPU: &GPUProbe{Command: reader(t, `{"gpus": [], "error": "GPU 0: Unknown Error"}`, 1)}}.Probe(context.Background())
	if err == nil || !strings.Contains(err.Error(), "GPU 0: Unknown Error") {
		t.Errorf("probe error %v", err)
	}
}

func TestActivityString(t *testing.T) {
	idleGPUs := []gpufacts.GPUActivity{{Index: 0, UUID: "GPU-a", Utilization: ptr.To[uint32](0)}, {Index: 1, UUID: "GPU-b", Utilization: ptr.To[uint32](0)}}
	cases := []struct {
		a    Activity
		want string
	}{
		{Activity{}, "no SSH session, no terminal, no busy kernel, no busy process"},
		{Activity{GPUs: idleGPUs}, "no SSH session, no terminal, no busy kernel, no busy process, GPUs idle (GPU 0 at 0 %, GPU 1 at 0 %)"},
		{Activity{SSHSessions: 2, Terminals: 1}, "busy: 2 SSH sessions, 1 terminal"},
		{Activity{BusyProcesses: []ProcessUse{{PID: 42, Comm: "python3", CPU: 3}, {PID: 7, Comm: "bash", CPU: 0.1}}},
			"busy: python3 (pid 42) at 300 % CPU, bash (pid 7) at 10 % CPU"},
		{Activity{BusyProcesses: make([]ProcessUse, 5)}, "busy: " + strings.Repeat(" (pid 0) at 0 % CPU, ", 3) + "2 more busy processes"},
		{Activity{BusyKernels: 1, GPUs: []gpufacts.GPUActivity{{Index: -1, UUID: "MIG-x", Processes: 2}}}, "busy: 1 busy kernel, 2 processes using MIG-x"},
	}
	for _, tc := range cases {
		if got := tc.a.String(); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}

// TestIdleMonitorSaysWhatItMeasured: the termination message (which the operator's event
// and status repeat) names every measure, GPUs included.
func TestIdleMonitorSaysWhatItMeasured(t *testing.T) {
	clock := &fakeClock{now: t0}
	gpus := []gpufacts.GPUActivity{{Index: 0, UUID: "GPU-a", Utilization: ptr.To[uint32](0)}}
	prober := &scriptedProber{clock: clock, at: func(since time.Duration) (Activity, error) {
		if since <= time.Hour {
			busy := []gpufacts.GPUActivity{{Index: 0, UUID: "GPU-a", Utilization: ptr.To[uint32](97), Processes: 1}}
			return Activity{GPUs: busy}, nil
		}
		if since <= 2*time.Hour {
			return Activity{GPUs: gpus}, errors.New("GPU reader: no report")
		}
		return Activity{GPUs: gpus}, nil
	}}
	reason := IdleMonitor{Prober: prober, After: 41 * time.Minute, Every: time.Minute, Clock: clock}.Run(context.Background())
	want := "trainenv: idle for 41m0s: no SSH session, no terminal, no busy kernel, no busy process, GPUs idle (GPU 0 at 0 %) since 2026-11-22T10:00:00Z"
	if reason != want {
		t.Errorf("reason %q\nwant   %q", reason, want)
	}
}
