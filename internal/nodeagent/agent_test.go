package nodeagent_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trainenv/trainenv/internal/gpufacts"
	"github.com/trainenv/trainenv/internal/nodeagent"
	"github.com/trainenv/trainenv/internal/nvmlread/nvmltest"
)

// Events mark changes of the node's GPU state, not passes.
func TestAgentEventsOnChange(t *testing.T) {
	needAPIServer(t)
	waitForPolicy(t)
	g := NewWithT(t)
	ctx := context.Background()
	node := newNode(t, "events", nil)
	rec := events.NewFakeRecorder(10)
	healthy := nvmltest.Complete(dgxa100.New())
	a := &nodeagent.Agent{
		NVML:      healthy,
		Publisher: &nodeagent.Publisher{Client: agentClient(t, node.Name), NodeName: node.Name},
		Recorder:  rec,
		Log:       logr.Discard(),
	}
	pass := func(lib nvml.Interface) []string {
		a.NVML = lib
		g.Expect(a.Pass(ctx)).To(Succeed())
		var got []string
		for len(rec.Events) > 0 {
			got = append(got, <-rec.Events)
		}
		return got
	}

	g.Expect(pass(healthy)).To(ConsistOf("Normal GPUFactsPublished driver 550.54.15, supports CUDA 12.4, 8 GPUs (8× Mock NVIDIA A100-SXM4-40GB)"))
	g.Expect(pass(healthy)).To(BeEmpty())
	g.Expect(pass(nvmltest.NoNVML())).To(ConsistOf(HavePrefix("Warning NVMLUnavailable NVML cannot be read, so the node's GPU labels are removed until it can: NVML init: ERROR_LIBRARY_NOT_FOUND")))
	g.Expect(pass(nvmltest.NoNVML())).To(BeEmpty())

	sick := nvmltest.Complete(dgxa100.New())
	nvmltest.Device(sick, 5).GetTotalEccErrorsFunc = func(nvml.MemoryErrorType, nvml.EccCounterType) (uint64, nvml.Return) { return 1, nvml.SUCCESS }
	g.Expect(pass(sick)).To(ConsistOf(MatchRegexp(`^Warning GPUUnhealthy labelled trainenv.io/gpu.healthy=false: GPU 5 \(GPU-.*\): 1 uncorrectable ECC errors`)))
	g.Expect(getNode(t, node.Name).Labels).To(HaveKeyWithValue(gpufacts.LabelHealthy, "false"))
	g.Expect(pass(healthy)).To(ConsistOf(HavePrefix("Normal GPUFactsPublished")))
}

// Run keeps passing on its interval whatever NVML does, and ends with its context.
func TestAgentRunKeepsRetrying(t *testing.T) {
	needAPIServer(t)
	waitForPolicy(t)
	g := NewWithT(t)
	node := newNode(t, "run", nil)
	var inits atomic.Int32
	lib := nvmltest.NoNVML()
	failing := &countingInit{Interface: lib, n: &inits}
	a := &nodeagent.Agent{
		NVML:      failing,
		Publisher: &nodeagent.Publisher{Client: agentClient(t, node.Name), NodeName: node.Name},
		Interval:  20 * time.Millisecond,
		Log:       logr.Discard(),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Run(ctx) }()
	g.Eventually(inits.Load).Should(BeNumerically(">=", 3))
	cancel()
	g.Eventually(done).Should(Receive(BeNil()))
	g.Expect(getNode(t, node.Name).Labels).To(HaveKeyWithValue(gpufacts.LabelNVML, gpufacts.NVMLUnavailable))

	a.Publisher.NodeName = ""
	g.Expect(a.Run(context.Background())).To(MatchError(nodeagent.ErrNoNodeName))
}

type countingInit struct {
	nvml.Interface
	n *atomic.Int32
}

func (c *countingInit) Init() nvml.Return { c.n.Add(1); return c.Interface.Init() }

// The agent's RBAC lets it record events about its node, through the real events library.
func TestAgentRecordsEvents(t *testing.T) {
	needAPIServer(t)
	waitForPolicy(t)
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	node := newNode(t, "recorded", nil)
	cfg := rest.CopyConfig(envConfig)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: agentUser, Extra: map[string][]string{nodeNameExtra: {node.Name}}}
	cs, err := kubernetes.NewForConfig(cfg)
	g.Expect(err).NotTo(HaveOccurred())
	b := events.NewBroadcaster(&events.EventSinkImpl{Interface: cs.EventsV1()})
	g.Expect(b.StartRecordingToSinkWithContext(ctx)).To(Succeed())
	defer b.Shutdown()

	a := &nodeagent.Agent{
		NVML:      nvmltest.NoNVML(),
		Publisher: &nodeagent.Publisher{Client: agentClient(t, node.Name), NodeName: node.Name},
		Recorder:  b.NewRecorder(clientgoscheme.Scheme, nodeagent.FieldManager),
		Log:       logr.Discard(),
	}
	g.Expect(a.Pass(ctx)).To(Succeed())
	g.Eventually(func() []eventsv1.Event {
		list := &eventsv1.EventList{}
		g.Expect(admin.List(ctx, list, client.InNamespace("default"))).To(Succeed())
		var mine []eventsv1.Event
		for _, e := range list.Items {
			if e.Regarding.Name == node.Name {
				mine = append(mine, e)
			}
		}
		return mine
	}).Should(ConsistOf(And(
		HaveField("Reason", nodeagent.ReasonNVMLUnavailable),
		HaveField("Type", "Warning"),
		HaveField("Regarding.Kind", "Node"),
		HaveField("ReportingController", nodeagent.FieldManager),
	)))
}
