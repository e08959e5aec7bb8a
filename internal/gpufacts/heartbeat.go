package gpufacts

import "time"

// AnnotationHeartbeat is when the node agent last confirmed the node's facts (RFC 3339, UTC).
// The agent writes the facts only when they change, so their age says nothing about whether
// it still runs; it refreshes this annotation every HeartbeatInterval instead, and the
// manager reports the agent down (trainenv_node_agent_up 0) once it is older than
// HeartbeatStaleAfter.
const AnnotationHeartbeat = "trainenv.io/gpu-facts-heartbeat"

// HeartbeatInterval is how old the heartbeat may grow before the agent writes it again: one
// node write per interval, the cadence at which the kubelet reports an unchanged node status.
const HeartbeatInterval = 5 * time.Minute

// HeartbeatStaleAfter is when a heartbeat means the agent is gone: three missed intervals.
const HeartbeatStaleAfter = 3 * HeartbeatInterval

// ManagedAnnotationKeys are the annotations the node agent writes, and the only ones its
// admission policy lets it change.
func ManagedAnnotationKeys() []string {
	return []string{AnnotationFacts, AnnotationHeartbeat}
}

// FormatHeartbeat is the annotation value for t.
func FormatHeartbeat(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Heartbeat returns the heartbeat time in a node's annotations, false when there is none or
// it does not parse. (Maps, not a Node: the in-pod preflight imports this package and links
// no Kubernetes types.)
func Heartbeat(annotations map[string]string) (time.Time, bool) {
	v, ok := annotations[AnnotationHeartbeat]
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, v)
	return t, err == nil
}

// AgentUp tells whether the node agent reports on a node with these labels and annotations:
// its NVML label is there (it has published at least once, whatever NVML said) and its
// heartbeat is fresh at now. A heartbeat in the future (clock skew) counts as fresh.
func AgentUp(labels, annotations map[string]string, now time.Time) bool {
	if _, ok := labels[LabelNVML]; !ok {
		return false
	}
	t, ok := Heartbeat(annotations)
	return ok && now.Sub(t) <= HeartbeatStaleAfter
}
