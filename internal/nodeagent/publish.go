package nodeagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trainenv/trainenv/internal/gpufacts"
)

// FieldManager names the agent's writes in the node's managedFields.
const FieldManager = "trainenv-node-agent"

// LabelGFDTimestamp is set by GPU Feature Discovery on every node it labels. Where it is, the
// agent leaves the nvidia.com/ labels to GFD: two writers of one label with different views
// (GFD's MIG strategies relabel product and count) would flip it on every pass.
const LabelGFDTimestamp = "nvidia.com/gfd.timestamp"

// ErrNoNodeName is returned when the agent is not told which node it runs on.
var ErrNoNodeName = errors.New("node name is empty: set NODE_NAME from the downward API (spec.nodeName)")

// Publisher writes GPU facts to one node: the agent's own node, and only its own label keys
// (gpufacts.ManagedLabelKeys) and annotations (gpufacts.ManagedAnnotationKeys). The admission
// policy in config/agent refuses anything else, so a change here that writes more fails in
// the cluster, not silently.
type Publisher struct {
	Client   client.Client
	NodeName string
	// Now is the clock of the heartbeat (default time.Now).
	Now func() time.Time
}

// Publish makes the node carry f and a fresh heartbeat, and returns whether it wrote, with
// the node as read. It writes nothing when the node already carries f and its heartbeat is
// younger than gpufacts.HeartbeatInterval, so an idle agent costs one GET a pass and one
// write per heartbeat interval.
func (p *Publisher) Publish(ctx context.Context, f gpufacts.Facts) (bool, *corev1.Node, error) {
	if p.NodeName == "" {
		return false, nil, ErrNoNodeName
	}
	node := &corev1.Node{}
	if err := p.Client.Get(ctx, client.ObjectKey{Name: p.NodeName}, node); err != nil {
		return false, nil, fmt.Errorf("reading node %s: %w", p.NodeName, err)
	}
	patch, err := Changes(node, f)
	if err != nil {
		return false, node, err
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	if patch == nil && !heartbeatDue(node, now()) {
		return false, node, nil
	}
	if patch == nil {
		patch = &NodePatch{}
	}
	beat := gpufacts.FormatHeartbeat(now())
	setKey(&patch.Metadata.Annotations, gpufacts.AnnotationHeartbeat, &beat)
	data, err := json.Marshal(patch)
	if err != nil {
		return false, node, err
	}
	// A JSON merge patch names only the keys that change: labels other writers own are not
	// part of the request, so no race with them can drop theirs.
	if err := p.Client.Patch(ctx, node, client.RawPatch(types.MergePatchType, data), client.FieldOwner(FieldManager)); err != nil {
		return false, node, fmt.Errorf("patching node %s: %w", p.NodeName, err)
	}
	return true, node, nil
}

// NodePatch is a JSON merge patch of a node's labels and annotations: a nil value removes
// the key.
type NodePatch struct {
	Metadata struct {
		Labels      map[string]*string `json:"labels,omitempty"`
		Annotations map[string]*string `json:"annotations,omitempty"`
	} `json:"metadata"`
}

// Changes returns the patch that makes node carry f, or nil when it already does. Managed
// labels f has no value for are removed; labels not managed are never in the patch. On a
// node GFD labels, the nvidia.com/ labels are left alone.
func Changes(node *corev1.Node, f gpufacts.Facts) (*NodePatch, error) {
	want := f.Labels()
	deferToGFD := node.Labels[LabelGFDTimestamp] != ""
	p := &NodePatch{}
	changed := false
	for _, key := range gpufacts.ManagedLabelKeys() {
		if deferToGFD && gpufacts.IsGFDLabel(key) {
			continue
		}
		have, has := node.Labels[key]
		value, wanted := want[key]
		switch {
		case wanted && (!has || have != value):
			setKey(&p.Metadata.Labels, key, &value)
		case !wanted && has:
			setKey(&p.Metadata.Labels, key, nil)
		default:
			continue
		}
		changed = true
	}
	doc, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	if annotation := string(doc); node.Annotations[gpufacts.AnnotationFacts] != annotation {
		setKey(&p.Metadata.Annotations, gpufacts.AnnotationFacts, &annotation)
		changed = true
	}
	if !changed {
		return nil, nil
	}
	return p, nil
}

// heartbeatDue tells whether the node's heartbeat is missing, as old as the interval, or
// implausibly far in the future (a clock that jumped back).
func heartbeatDue(node *corev1.Node, now time.Time) bool {
	t, ok := gpufacts.Heartbeat(node.Annotations)
	return !ok || now.Sub(t) >= gpufacts.HeartbeatInterval || t.Sub(now) >= gpufacts.HeartbeatInterval
}

func setKey(m *map[string]*string, key string, value *string) {
	if *m == nil {
		*m = map[string]*string{}
	}
	(*m)[key] = value
}
