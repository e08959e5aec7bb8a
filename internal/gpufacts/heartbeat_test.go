package gpufacts_test

import (
	"testing"
	"time"

	"github.com/trainenv/trainenv/internal/gpufacts"
)

func TestAgentUp(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	ok := map[string]string{gpufacts.LabelNVML: gpufacts.NVMLOK}
	unavailable := map[string]string{gpufacts.LabelNVML: gpufacts.NVMLUnavailable}
	beat := func(at time.Time) map[string]string {
		return map[string]string{gpufacts.AnnotationHeartbeat: gpufacts.FormatHeartbeat(at)}
	}
	for _, tc := range []struct {
		name                string
		labels, annotations map[string]string
		up                  bool
	}{
		{"fresh", ok, beat(now.Add(-time.Minute)), true},
		{"NVML unavailable, agent alive", unavailable, beat(now), true},
		{"at the limit", ok, beat(now.Add(-gpufacts.HeartbeatStaleAfter)), true},
		{"stale", ok, beat(now.Add(-gpufacts.HeartbeatStaleAfter - time.Second)), false},
		{"clock skew ahead", ok, beat(now.Add(time.Hour)), true},
		{"no heartbeat (an older agent)", ok, nil, false},
		{"unparsable heartbeat", ok, map[string]string{gpufacts.AnnotationHeartbeat: "yesterday"}, false},
		{"heartbeat without the agent's label", nil, beat(now), false},
	} {
		if got := gpufacts.AgentUp(tc.labels, tc.annotations, now); got != tc.up {
			t.Errorf("%s: up %v, want %v", tc.name, got, tc.up)
		}
	}
	if got := gpufacts.FormatHeartbeat(time.Date(2026, 11, 23, 13, 0, 0, 0, time.FixedZone("CET", 3600))); got != "2026-11-23T12:00:00Z" {
		t.Errorf("heartbeat %s, want UTC", got)
	}
}
