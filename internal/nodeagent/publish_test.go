package nodeagent_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/trainenv/trainenv/internal/gpufacts"
	"github.com/trainenv/trainenv/internal/nodeagent"
	"github.com/trainenv/trainenv/internal/nvmlread"
	"github.com/trainenv/trainenv/internal/nvmlread/nvmltest"
)

func managed(n *corev1.Node) map[string]string {
	out := map[string]string{}
	for _, k := range gpufacts.ManagedLabelKeys() {
		if v, ok := n.Labels[k]; ok {
			out[k] = v
		}
	}
	return out
}

func annotatedFacts(g Gomega, n *corev1.Node) gpufacts.Facts {
	var f gpufacts.Facts
	g.Expect(json.Unmarshal([]byte(n.Annotations[gpufacts.AnnotationFacts]), &f)).To(Succeed())
	return f
}

// The publisher runs as the agent's service account, so every write also passes the
// admission policy and RBAC of config/agent.
func TestPublish(t *testing.T) {
	needAPIServer(t)
	waitForPolicy(t)
	g := NewWithT(t)
	ctx := context.Background()
	node := newNode(t, "gpu", nil)
	p := &nodeagent.Publisher{Client: agentClient(t, node.Name), NodeName: node.Name}
	a100 := nvmlread.Read(nvmltest.Complete(dgxa100.New()))

	wrote, _, err := p.Publish(ctx, a100)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(wrote).To(BeTrue())
	n := getNode(t, node.Name)
	g.Expect(managed(n)).To(Equal(a100.Labels()))
	g.Expect(annotatedFacts(g, n)).To(Equal(a100))
	g.Expect(n.Labels).To(HaveKeyWithValue("topology.kubernetes.io/zone", "zone-a"), "labels of others are kept")
	g.Expect(n.Annotations).To(HaveKeyWithValue("example.com/owner", "team-a"))

	t.Run("no write when nothing changed", func(t *testing.T) {
		g := NewWithT(t)
		wrote, _, err := p.Publish(ctx, a100)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(wrote).To(BeFalse())
		g.Expect(getNode(t, node.Name).ResourceVersion).To(Equal(n.ResourceVersion))
	})

	t.Run("NVML fails: facts removed, marked unavailable", func(t *testing.T) {
		g := NewWithT(t)
		wrote, _, err := p.Publish(ctx, nvmlread.Read(nvmltest.NoNVML()))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(wrote).To(BeTrue())
		n := getNode(t, node.Name)
		g.Expect(managed(n)).To(Equal(map[string]string{gpufacts.LabelNVML: gpufacts.NVMLUnavailable}))
		f := annotatedFacts(g, n)
		g.Expect(f.NVML).To(Equal(gpufacts.NVMLUnavailable))
		g.Expect(f.Error).To(ContainSubstring("ERROR_LIBRARY_NOT_FOUND"))
		g.Expect(f.GPUs).To(BeEmpty())
		g.Expect(n.Labels).To(HaveKeyWithValue("topology.kubernetes.io/zone", "zone-a"))
	})

	t.Run("NVML back: facts back", func(t *testing.T) {
		g := NewWithT(t)
		_, _, err := p.Publish(ctx, a100)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(managed(getNode(t, node.Name))).To(Equal(a100.Labels()))
	})
}

// On a node GPU Feature Discovery labels, its nvidia.com/ labels are its own, even where the
// agent would write them differently (here GFD's MIG "single" strategy).
func TestPublishLeavesGFDLabels(t *testing.T) {
	needAPIServer(t)
	waitForPolicy(t)
	g := NewWithT(t)
	ctx := context.Background()
	gfd := map[string]string{
		nodeagent.LabelGFDTimestamp: "1732270000",
		gpufacts.LabelProduct:       "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb",
		gpufacts.LabelCount:         "56",
		gpufacts.LabelDriverMajor:   "550",
	}
	node := newNode(t, "gfd", gfd)
	p := &nodeagent.Publisher{Client: agentClient(t, node.Name), NodeName: node.Name}

	a100 := nvmlread.Read(nvmltest.Complete(dgxa100.New()))
	_, _, err := p.Publish(ctx, a100)
	g.Expect(err).NotTo(HaveOccurred())
	n := getNode(t, node.Name)
	for k, v := range gfd {
		g.Expect(n.Labels).To(HaveKeyWithValue(k, v))
	}
	g.Expect(n.Labels).To(HaveKeyWithValue(gpufacts.LabelCUDAInt, "12040"))
	g.Expect(n.Labels).To(HaveKeyWithValue(gpufacts.LabelBrand, "nvidia"))
	g.Expect(n.Labels).NotTo(HaveKey(gpufacts.LabelFamily), "GFD's to write")

	_, _, err = p.Publish(ctx, nvmlread.Read(nvmltest.NoNVML()))
	g.Expect(err).NotTo(HaveOccurred())
	n = getNode(t, node.Name)
	for k, v := range gfd {
		g.Expect(n.Labels).To(HaveKeyWithValue(k, v))
	}
	g.Expect(n.Labels).NotTo(HaveKey(gpufacts.LabelCUDAInt))
	g.Expect(n.Labels).To(HaveKeyWithValue(gpufacts.LabelNVML, gpufacts.NVMLUnavailable))
}

func TestChanges(t *testing.T) {
	g := NewWithT(t)
	f := nvmlread.Read(nvmltest.Complete(dgxa100.New()))
	node := &corev1.Node{}
	p, err := nodeagent.Changes(node, f)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(p.Metadata.Labels).To(HaveLen(len(gpufacts.ManagedLabelKeys())))
	g.Expect(p.Metadata.Annotations).To(HaveKey(gpufacts.AnnotationFacts))

	node.Labels = f.Labels()
	node.Labels["other"] = "x"
	doc, _ := json.Marshal(f)
	node.Annotations = map[string]string{gpufacts.AnnotationFacts: string(doc)}
	p, err = nodeagent.Changes(node, f)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(p).To(BeNil(), "nothing to write")

	p, err = nodeagent.Changes(node, gpufacts.Unavailable("gone"))
	g.Expect(err).NotTo(HaveOccurred())
	body, _ := json.Marshal(p.Metadata.Labels)
	g.Expect(p.Metadata.Labels).To(HaveLen(len(gpufacts.ManagedLabelKeys())))
	g.Expect(string(body)).To(ContainSubstring(`"trainenv.io/nvml":"unavailable"`))
	g.Expect(string(body)).To(ContainSubstring(`"nvidia.com/gpu.product":null`))
	g.Expect(p.Metadata.Labels).NotTo(HaveKey("other"))
}

// The agent writes unchanged facts never, but its heartbeat once per interval, through the
// admission policy, so that the manager can tell a live agent from a gone one.
func TestPublishRefreshesHeartbeat(t *testing.T) {
	needAPIServer(t)
	waitForPolicy(t)
	g := NewWithT(t)
	ctx := context.Background()
	node := newNode(t, "heartbeat", nil)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	p := &nodeagent.Publisher{Client: agentClient(t, node.Name), NodeName: node.Name, Now: func() time.Time { return now }}
	a100 := nvmlread.Read(nvmltest.Complete(dgxa100.New()))

	wrote, _, err := p.Publish(ctx, a100)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(wrote).To(BeTrue())
	n := getNode(t, node.Name)
	g.Expect(n.Annotations).To(HaveKeyWithValue(gpufacts.AnnotationHeartbeat, "2026-11-23T12:00:00Z"))
	g.Expect(gpufacts.AgentUp(n.Labels, n.Annotations, now)).To(BeTrue())

	now = now.Add(gpufacts.HeartbeatInterval - time.Second)
	wrote, _, err = p.Publish(ctx, a100)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(wrote).To(BeFalse(), "a fresh heartbeat and unchanged facts: no write")

	now = now.Add(time.Second)
	wrote, _, err = p.Publish(ctx, a100)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(wrote).To(BeTrue(), "the heartbeat is due")
	beat := getNode(t, node.Name)
	g.Expect(beat.Annotations).To(HaveKeyWithValue(gpufacts.AnnotationHeartbeat, "2026-11-23T12:05:00Z"))
	g.Expect(beat.Annotations[gpufacts.AnnotationFacts]).To(Equal(n.Annotations[gpufacts.AnnotationFacts]))
	g.Expect(beat.Labels).To(Equal(n.Labels))

	// Without the agent, the heartbeat ages: fresh up to HeartbeatStaleAfter, then down.
	g.Expect(gpufacts.AgentUp(beat.Labels, beat.Annotations, now.Add(gpufacts.HeartbeatStaleAfter))).To(BeTrue())
	g.Expect(gpufacts.AgentUp(beat.Labels, beat.Annotations, now.Add(gpufacts.HeartbeatStaleAfter+time.Second))).To(BeFalse())
}
