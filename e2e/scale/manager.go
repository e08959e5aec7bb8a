//go:build scalebench

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// manager is the trainenv manager process, run as User trainenv-manager.
type manager struct {
	cfg     config
	cmd     *exec.Cmd
	log     string
	started time.Time
	logFrom int64 // size of the log when this process started
	done    chan struct{}
}

// startManager starts the manager; syncPeriod 0 leaves its default (10 h), as deployed.
func startManager(_ context.Context, _ *cluster, cfg config, syncPeriod time.Duration) (*manager, error) {
	m := &manager{cfg: cfg, log: filepath.Join(cfg.stateDir, "logs", "manager.log")}
	if st, err := os.Stat(m.log); err == nil {
		m.logFrom = st.Size()
	}
	out, err := os.OpenFile(m.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	// No --allow-unmatched-images: every image must pass the ClusterImagePolicy.
	args := []string{
		"--kubeconfig", filepath.Join(cfg.stateDir, "manager.kubeconfig"),
		// Plain HTTP on loopback, so that the benchmark can scrape the reconcile counts.
		"--metrics-bind-address", "127.0.0.1:" + port("TRAINENV_METRICS_PORT"), "--metrics-secure=false",
		"--health-probe-bind-address", "127.0.0.1:" + port("TRAINENV_PROBE_PORT"),
		"--pprof-bind-address", "127.0.0.1:" + port("TRAINENV_PPROF_PORT"),
		"--max-concurrent-reconciles", strconv.Itoa(cfg.concurrency),
		"--zap-time-encoding", "rfc3339nano"}
	if syncPeriod > 0 {
		args = append(args, "--sync-period", syncPeriod.String())
	}
	m.cmd = exec.Command(cfg.manager, args...)
	m.cmd.Stdout, m.cmd.Stderr = out, out
	if cfg.memoryLimit > 0 {
		// What the manager sets itself in a container with this memory limit (cmd/memlimit.go).
		m.cmd.Env = append(os.Environ(), fmt.Sprintf("GOMEMLIMIT=%d", cfg.goMemLimit()))
	}
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	m.started = time.Now()
	if err := m.cmd.Start(); err != nil {
		return nil, err
	}
	// down.sh stops whatever has a pid file there, should the benchmark die first.
	pidFile := filepath.Join(cfg.stateDir, "pids", "manager.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(m.cmd.Process.Pid)), 0o644); err != nil {
		return nil, err
	}
	m.done = make(chan struct{})
	go func() { _ = m.cmd.Wait(); close(m.done) }()
	ready := "http://127.0.0.1:" + port("TRAINENV_PROBE_PORT") + "/readyz"
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if resp, err := http.Get(ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) || m.exited() {
			return nil, fmt.Errorf("the manager did not become ready; see %s", m.log)
		}
	}
	logf("manager running (pid %d, log %s)", m.cmd.Process.Pid, m.log)
	return m, nil
}

func (m *manager) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// stop ends the manager: SIGTERM, then SIGKILL after 10 s.
func (m *manager) stop() {
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
}

// procStats is what /proc says about the manager.
type procStats struct {
	cpu       time.Duration // user + system
	rss, peak int64         // VmRSS, VmHWM in bytes
	// anon is RssAnon: the Go runtime's memory, without the pages of the (large) binary
	// that VmRSS also counts.
	anon int64
}

func (m *manager) stats() (procStats, error) {
	var s procStats
	pid := m.cmd.Process.Pid
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// Fields after the command (which may hold spaces): state is field 3, utime 14, stime 15.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	// USER_HZ is 100 on every Linux architecture Go supports.
	s.cpu = time.Duration(utime+stime) * 10 * time.Millisecond
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			s.rss = kb << 10
		case "VmHWM":
			s.peak = kb << 10
		case "RssAnon":
			s.anon = kb << 10
		}
	}
	return s, sc.Err()
}

// workersStarted returns when the controller started its workers, i.e. when its informers
// had synced, from the manager's log (controller-runtime logs "Starting workers").
func (m *manager) workersStarted() (time.Time, error) {
	f, err := os.Open(m.log)
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	if _, err := f.Seek(m.logFrom, 0); err != nil {
		return time.Time{}, err
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if !strings.Contains(sc.Text(), "Starting workers") {
			continue
		}
		var line struct {
			TS time.Time `json:"ts"` // RFC 3339 with nanoseconds (--zap-time-encoding)
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return time.Time{}, fmt.Errorf("reading %s: %w", m.log, err)
		}
		return line.TS, nil
	}
	return time.Time{}, fmt.Errorf("no \"Starting workers\" in %s", m.log)
}

// profile saves the manager's pprof profile kind (e.g. "profile?seconds=30", "heap") to
// the state directory's profiles/NAME, for go tool pprof.
func (m *manager) profile(kind, name string) {
	dir := filepath.Join(m.cfg.stateDir, "profiles")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		logf("profile: %v", err)
		return
	}
	resp, err := http.Get("http://127.0.0.1:" + port("TRAINENV_PPROF_PORT") + "/debug/pprof/" + kind)
	if err != nil {
		logf("profile %s: %v", kind, err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		logf("profile: %v", err)
		return
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		logf("profile %s: %v", kind, err)
	}
}

// metrics scrapes the manager's own Prometheus endpoint.
func (m *manager) metrics() (samples, error) {
	resp, err := http.Get("http://127.0.0.1:" + port("TRAINENV_METRICS_PORT") + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("manager metrics: %s", resp.Status)
	}
	return parseSamples(resp.Body)
}
