package entrypoint

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"

	"github.com/trainenv/trainenv/internal/gpufacts"
)

// GPUProbe reads the utilisation of the pod's GPUs by running the GPU reader
// (`trainenv-preflight gpu-activity`, from the tools volume): the entrypoint is a static
// binary and cannot load NVML, the preflight links it already. The reader inherits the
// container's environment, so it reads exactly the GPUs NVIDIA_VISIBLE_DEVICES names.
type GPUProbe struct {
	Command []string
	// Started is told the reader's PID, so that its own CPU time is not taken for work.
	Started func(pid int)
}

// Read runs the reader once. A reader that cannot run, fails or prints anything but its
// JSON is an error: an unknown is never taken for idle.
func (p *GPUProbe) Read(ctx context.Context) ([]gpufacts.GPUActivity, error) {
	if len(p.Command) == 0 {
		return nil, errors.New("no GPU reader configured")
	}
	cmd := exec.CommandContext(ctx, p.Command[0], p.Command[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("GPU reader: %w", err)
	}
	if p.Started != nil {
		p.Started(cmd.Process.Pid)
	}
	err := cmd.Wait()
	// As PID 1 the supervisor reaps every child that ends, the reader too, and Wait may
	// then find no child: the output tells whether the reader finished.
	if err != nil && !errors.Is(err, syscall.ECHILD) {
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			return nil, fmt.Errorf("GPU reader: %w", err)
		}
	}
	var out struct {
		GPUs  *[]gpufacts.GPUActivity `json:"gpus"`
		Error string                  `json:"error"`
	}
	if jerr := json.Unmarshal(stdout.Bytes(), &out); jerr != nil || out.GPUs == nil {
		return nil, fmt.Errorf("GPU reader: no report (%w; %s)", firstErr(err, jerr), strings.TrimSpace(stderr.String()))
	}
	if out.Error != "" {
		return nil, fmt.Errorf("GPU reader: %s", out.Error)
	}
	return *out.GPUs, nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return errors.New("empty output")
}

// pidSet is the PIDs of the idle baseline: the entrypoint, the services the supervisor
// started, and the latest GPU readers.
type pidSet struct {
	mu       sync.Mutex
	services []int
	helpers  []int
}

func (s *pidSet) addService(pid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.services = append(s.services, pid)
}

// addHelper remembers the last few readers: one may still be a zombie until reaped.
func (s *pidSet) addHelper(pid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.helpers = append(s.helpers[max(0, len(s.helpers)-3):], pid)
}

func (s *pidSet) list() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append(append([]int(nil), s.services...), s.helpers...)
}
