package nvmlread_test

import (
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	. "github.com/onsi/gomega"

	"github.com/trainenv/trainenv/internal/nvmlread"
	"github.com/trainenv/trainenv/internal/nvmlread/nvmltest"
)

// busyServer is a DGX A100 whose GPU i runs util[i] % with procs[i] compute processes.
func busyServer(util map[int]uint32, procs map[int]int) *server.Server {
	s := dgxa100.New()
	for i := range s.Devices {
		d := nvmltest.Device(s, i)
		u, n := util[i], procs[i]
		d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{Gpu: u, Memory: u / 2}, nvml.SUCCESS }
		d.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
			return make([]nvml.ProcessInfo, n), nvml.SUCCESS
		}
	}
	return s
}

func uuid(s *server.Server, i int) string {
	u, _ := nvmltest.Device(s, i).GetUUID()
	return u
}

// TestActivityReadsOnlyThePodsGPUs: NVML may show GPUs of the node that the pod was not given
// (a privileged container, or a runtime that does not hide them); only those named by
// NVIDIA_VISIBLE_DEVICES count, so another pod's training never keeps this one up.
func TestActivityReadsOnlyThePodsGPUs(t *testing.T) {
	g := NewWithT(t)
	s := busyServer(map[int]uint32{0: 100, 5: 97}, map[int]int{0: 2, 5: 1})
	got, err := nvmlread.Activity(s, uuid(s, 2)+","+uuid(s, 5))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(HaveLen(2))
	g.Expect(got[0].Index).To(Equal(2))
	g.Expect(got[0].Busy()).To(BeFalse())
	g.Expect(got[1].Index).To(Equal(5))
	g.Expect(*got[1].Utilization).To(BeEquivalentTo(97))
	g.Expect(got[1].Processes).To(Equal(1))
	g.Expect(got[1].Busy()).To(BeTrue())

	byIndex, err := nvmlread.Activity(busyServer(map[int]uint32{0: 100}, nil), "1,2")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(byIndex).To(HaveLen(2))
	g.Expect(byIndex[0].Busy() || byIndex[1].Busy()).To(BeFalse(), "GPU 0 is not the pod's")

	all, err := nvmlread.Activity(busyServer(map[int]uint32{7: 3}, nil), "all")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(all).To(HaveLen(8))
	g.Expect(all[7].Busy()).To(BeTrue(), "any utilisation is work")

	none, err := nvmlread.Activity(busyServer(map[int]uint32{0: 100}, nil), "void")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(none).To(BeEmpty())

	_, err = nvmlread.Activity(busyServer(nil, nil), "GPU-not-on-this-node")
	g.Expect(err).To(MatchError(ContainSubstring("GPU-not-on-this-node")), "an unknown GPU is an error, never idle")
}

// TestActivityOfMIGDevicesUsesProcesses: NVML has no utilisation for a MIG device; a compute
// process on it is work.
func TestActivityOfMIGDevicesUsesProcesses(t *testing.T) {
	g := NewWithT(t)
	s := busyServer(nil, map[int]int{0: 1})
	for i := range s.Devices {
		nvmltest.Device(s, i).GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
			return nvml.Utilization{}, nvml.ERROR_NOT_SUPPORTED
		}
	}
	got, err := nvmlread.Activity(s, "0,1")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got[0].Utilization).To(BeNil())
	g.Expect(got[0].Busy()).To(BeTrue())
	g.Expect(got[1].Busy()).To(BeFalse())

	s = busyServer(nil, nil)
	nvmltest.Device(s, 0).GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
		return nvml.Utilization{}, nvml.ERROR_GPU_IS_LOST
	}
	_, err = nvmlread.Activity(s, "0")
	g.Expect(err).To(MatchError(ContainSubstring("utilisation")))
}
