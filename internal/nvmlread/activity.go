package nvmlread

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/trainenv/trainenv/internal/gpufacts"
)

// Activity initialises NVML and reads the activity of the GPUs visible says the container
// was given: the value of NVIDIA_VISIBLE_DEVICES ("all" or unset: every GPU NVML shows;
// "none" or "void": none; otherwise a comma-separated list of indices or GPU-/MIG- UUIDs,
// as device plugins set it). A GPU that cannot be read is an error: the caller must not
// take an unknown for idle.
func Activity(lib nvml.Interface, visible string) ([]gpufacts.GPUActivity, error) {
	visible = strings.TrimSpace(visible)
	if visible == "none" || visible == "void" {
		return nil, nil
	}
	if ret := lib.Init(); ret != nvml.SUCCESS {
		return nil, fmt.Errorf("NVML init: %s", describe(ret))
	}
	defer func() { _ = lib.Shutdown() }()
	devices, err := visibleDevices(lib, visible)
	if err != nil {
		return nil, err
	}
	out := make([]gpufacts.GPUActivity, 0, len(devices))
	for _, dev := range devices {
		g, err := deviceActivity(dev)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

func visibleDevices(lib nvml.Interface, visible string) ([]nvml.Device, error) {
	var devices []nvml.Device
	if visible == "" || visible == "all" {
		n, ret := lib.DeviceGetCount()
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("NVML device count: %s", describe(ret))
		}
		for i := range n {
			dev, ret := lib.DeviceGetHandleByIndex(i)
			if ret != nvml.SUCCESS {
				return nil, fmt.Errorf("GPU %d: %s", i, describe(ret))
			}
			devices = append(devices, dev)
		}
		return devices, nil
	}
	for _, id := range strings.Split(visible, ",") {
		id = strings.TrimSpace(id)
		var dev nvml.Device
		var ret nvml.Return
		if i, err := strconv.Atoi(id); err == nil {
			dev, ret = lib.DeviceGetHandleByIndex(i)
		} else {
			dev, ret = lib.DeviceGetHandleByUUID(id)
		}
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("GPU %s (NVIDIA_VISIBLE_DEVICES): %s", id, describe(ret))
		}
		devices = append(devices, dev)
	}
	return devices, nil
}

func deviceActivity(dev nvml.Device) (gpufacts.GPUActivity, error) {
	var g gpufacts.GPUActivity
	var ret nvml.Return
	if g.Index, ret = dev.GetIndex(); ret != nvml.SUCCESS {
		g.Index = -1 // MIG devices have no index of their own
	}
	if g.UUID, ret = dev.GetUUID(); ret != nvml.SUCCESS {
		return g, fmt.Errorf("GPU %d: UUID: %s", g.Index, describe(ret))
	}
	procs, ret := dev.GetComputeRunningProcesses()
	if ret != nvml.SUCCESS {
		return g, fmt.Errorf("GPU %s: compute processes: %s", g.UUID, describe(ret))
	}
	g.Processes = len(procs)
	switch u, ret := dev.GetUtilizationRates(); ret {
	case nvml.SUCCESS:
		g.Utilization = &u.Gpu
	case nvml.ERROR_NOT_SUPPORTED:
		// MIG devices: judged by their processes.
	default:
		return g, fmt.Errorf("GPU %s: utilisation: %s", g.UUID, describe(ret))
	}
	return g, nil
}
