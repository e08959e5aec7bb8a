//go:build scalebench

package main

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// tuneComponents restarts the kube-controller-manager and the kube-scheduler of up.sh with
// client rate limits fit for thousands of objects, as large clusters configure them. With
// their defaults (20 and 50 requests per second) the StatefulSet controller, not the
// operator, bounds how fast environments start: about 5 StatefulSets a second.
func tuneComponents(cfg config) error {
	if cfg.componentQPS <= 0 {
		return nil
	}
	qps, burst := strconv.Itoa(cfg.componentQPS), strconv.Itoa(2*cfg.componentQPS)
	extra := map[string][]string{
		"kube-controller-manager": {"--kube-api-qps=" + qps, "--kube-api-burst=" + burst, "--concurrent-statefulset-syncs=20"},
		"kube-scheduler":          {"--kube-api-qps=" + qps, "--kube-api-burst=" + burst},
	}
	for _, name := range []string{"kube-controller-manager", "kube-scheduler"} {
		if err := relaunch(cfg, name, extra[name]); err != nil {
			return err
		}
	}
	return nil
}

// relaunch restarts up.sh's component name with its own command line plus extra (unless
// it already has them), its pid file and log where up.sh keeps them.
func relaunch(cfg config, name string, extra []string) error {
	pidFile := filepath.Join(cfg.stateDir, "pids", name+".pid")
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return err
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return fmt.Errorf("%s (pid %d) is not running: %w", name, pid, err)
	}
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if slices.Contains(args, extra[0]) {
		return nil
	}
	logf("restarting %s with %s", name, strings.Join(extra, " "))
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return err
	}
	for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	log, err := os.OpenFile(filepath.Join(cfg.stateDir, "logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(args[0], append(args[1:], extra...)...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		return err
	}
	return waitHealthy(name, args)
}

// waitHealthy waits for the component's /healthz on its --secure-port.
func waitHealthy(name string, args []string) error {
	port := ""
	for i, a := range args {
		if a == "--secure-port" && i+1 < len(args) {
			port = args[i+1]
		}
	}
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // its self-signed serving cert, on loopback
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		resp, err := c.Get("https://127.0.0.1:" + port + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("%s did not become healthy on port %s", name, port)
}
