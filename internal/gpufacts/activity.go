package gpufacts

import "fmt"

// ActivityCommand is the argument that makes the preflight binary print the activity of the
// container's GPUs as JSON ({"gpus": [GPUActivity...]} or {"error": "..."}) and exit.
const ActivityCommand = "gpu-activity"

// GPUActivity is how busy one of a pod's GPUs is, as the in-pod reader (package nvmlread,
// `trainenv-preflight gpu-activity`) sends it to the entrypoint's idle detection as JSON.
type GPUActivity struct {
	// Index is NVML's index of the GPU in the container (what nvidia-smi shows there); -1
	// for a MIG device.
	Index int    `json:"index"`
	UUID  string `json:"uuid"`
	// Utilization is the percentage of NVML's last sample period (1/6 s to 1 s) during
	// which a kernel ran on the GPU; nil where NVML cannot tell (MIG devices).
	Utilization *uint32 `json:"utilization,omitempty"`
	// Processes is how many compute processes hold a context on the GPU.
	Processes int `json:"processes"`
}

// Busy says whether the GPU is doing work: any utilisation; where NVML has no utilisation
// (a MIG device), any compute process on it.
func (g GPUActivity) Busy() bool {
	if g.Utilization != nil {
		return *g.Utilization > 0
	}
	return g.Processes > 0
}

// Name is how people know the GPU: "GPU 0", or the UUID of a MIG device.
func (g GPUActivity) Name() string {
	if g.Index < 0 {
		return g.UUID
	}
	return fmt.Sprintf("GPU %d", g.Index)
}

// String is e.g. "1 process using GPU 0 at 97 %" or "GPU 1 at 0 %".
func (g GPUActivity) String() string {
	at := ""
	if g.Utilization != nil {
		at = fmt.Sprintf(" at %d %%", *g.Utilization)
	}
	if g.Processes == 0 {
		return g.Name() + at
	}
	return fmt.Sprintf("%d %s using %s%s", g.Processes, plural(g.Processes, "process", "processes"), g.Name(), at)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
