package entrypoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/trainenv/trainenv/internal/procnet"
)

// Probes is the environment's activity: SSH sessions from the kernel's TCP table,
// terminals and kernels from the Jupyter server, busy processes from their CPU time, and
// the pod's GPUs' utilisation. A nil part is not running (or, for GPUs, not there).
type Probes struct {
	SSH     *SSHProbe
	Jupyter *JupyterProbe
	CPU     *CPUProbe
	GPU     *GPUProbe
}

// Probe asks every part; any error makes the whole answer unknown.
func (p Probes) Probe(ctx context.Context) (Activity, error) {
	var a Activity
	var errs []error
	if p.CPU != nil {
		busy, err := p.CPU.Busy()
		a.BusyProcesses = busy
		errs = append(errs, err)
	}
	if p.GPU != nil {
		gpus, err := p.GPU.Read(ctx)
		a.GPUs = gpus
		errs = append(errs, err)
	}
	if p.SSH != nil {
		n, err := p.SSH.Sessions()
		a.SSHSessions = n
		errs = append(errs, err)
	}
	if p.Jupyter != nil {
		j, err := p.Jupyter.Probe(ctx)
		a.Terminals, a.BusyKernels, a.LastActivity = j.Terminals, j.BusyKernels, j.LastActivity
		errs = append(errs, err)
	}
	return a, errors.Join(errs...)
}

// SSHProbe counts established connections to sshd's port. Every SSH session (shell,
// VS Code, a tunnel) is one TCP connection through the port-forward to 127.0.0.1:port.
type SSHProbe struct {
	ProcDir string // "/proc": the pod's network namespace
	Port    uint16
}

// Sessions counts the established TCP connections to sshd's port: one per SSH session.
func (p SSHProbe) Sessions() (int, error) {
	socks, err := procnet.TCP(p.ProcDir)
	if err != nil {
		return 0, err
	}
	return procnet.Count(socks, procnet.Established, p.Port), nil
}

// JupyterProbe reads terminals, kernels and the last activity from the Jupyter server's
// REST API with the token.
type JupyterProbe struct {
	BaseURL string // http://127.0.0.1:8888
	Token   string
	Client  *http.Client
}

// Probe returns terminals, busy kernels and the server's last activity. Requests carry
// no_track_activity, so that polling does not itself count as use.
func (p JupyterProbe) Probe(ctx context.Context) (Activity, error) {
	var a Activity
	var kernels []struct {
		ExecutionState string `json:"execution_state"`
	}
	if err := p.get(ctx, "/api/kernels", &kernels); err != nil {
		return a, err
	}
	for _, k := range kernels {
		// "busy" runs code; "starting" and "restarting" will; "idle" and "dead" do not.
		switch k.ExecutionState {
		case "busy", "starting", "restarting":
			a.BusyKernels++
		}
	}
	var terminals []json.RawMessage
	if err := p.get(ctx, "/api/terminals", &terminals); err != nil {
		return a, err
	}
	a.Terminals = len(terminals)
	var status struct {
		LastActivity string `json:"last_activity"`
	}
	if err := p.get(ctx, "/api/status", &status); err != nil {
		return a, err
	}
	last, err := time.Parse(time.RFC3339Nano, status.LastActivity)
	if err != nil {
		return a, fmt.Errorf("jupyter /api/status last_activity %q: %w", status.LastActivity, err)
	}
	a.LastActivity = last
	return a, nil
}

func (p JupyterProbe) get(ctx context.Context, path string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.BaseURL+path+"?no_track_activity=1", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "token "+p.Token)
	client := p.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("jupyter %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("jupyter %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		return fmt.Errorf("jupyter %s: %w", path, err)
	}
	return nil
}
