// Package nodeagent publishes a node's GPU facts, read with NVML (package nvmlread), as
// labels and an annotation on that node only; the manager reads them through package
// gpufacts.
package nodeagent

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/gpufacts"
	"github.com/trainenv/trainenv/internal/nvmlread"
)

// DefaultInterval is how often the agent reads NVML. Driver facts change only with a driver
// upgrade and health rarely; a minute keeps a lost GPU from drawing new work for long while
// costing one GET per node per minute.
const DefaultInterval = time.Minute

// Event reasons, on the Node, emitted when the node's GPU state changes (not every pass);
// declared in api/v1alpha1 with the other reasons a user can see.
const (
	ReasonNVMLUnavailable = trainenvv1.ReasonNVMLUnavailable
	ReasonGPUUnhealthy    = trainenvv1.ReasonGPUUnhealthy
	ReasonGPUFacts        = trainenvv1.ReasonGPUFactsPublished
	eventAction           = "ReadNVML"
	// events.k8s.io notes hold at most 1 kB.
	maxNote = 1024
)

// Agent reads NVML and publishes the facts on an interval, for as long as its context lives.
// Failures (NVML, API server) never end it: they are reported and the next pass retries, so
// a node without a working driver gets a plain "unavailable" and no crash loop.
type Agent struct {
	NVML      nvml.Interface
	Publisher *Publisher
	// Recorder emits events on the Node; nil emits none.
	Recorder events.EventRecorder
	Interval time.Duration
	Log      logr.Logger

	// reported is the state last reported, so that events mark changes only.
	reported string
}

// Run passes once at once, then every Interval until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	if a.Publisher.NodeName == "" {
		return ErrNoNodeName
	}
	interval := a.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		_ = a.Pass(ctx) // Pass logs a failure; the next tick retries.
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Pass reads NVML and publishes what changed. It returns the error of publishing, which is
// also logged; the caller need not act on it.
func (a *Agent) Pass(ctx context.Context) error {
	f := nvmlread.Read(a.NVML)
	wrote, node, err := a.Publisher.Publish(ctx, f)
	if err != nil {
		a.Log.Error(err, "publishing GPU facts failed; retrying next pass")
		return err
	}
	a.Log.V(1).Info("GPU facts", "nvml", f.NVML, "healthy", f.Healthy, "wrote", wrote)
	a.report(node, f)
	return nil
}

// report logs and emits an event when the node's GPU state differs from the last reported.
func (a *Agent) report(node *corev1.Node, f gpufacts.Facts) {
	eventType, reason, note := summary(f)
	state := reason + "\x00" + note
	if state == a.reported {
		return
	}
	a.reported = state
	if eventType == corev1.EventTypeWarning {
		a.Log.Info("GPU facts: "+note, "reason", reason)
	} else {
		a.Log.Info("GPU facts published", "summary", note)
	}
	if a.Recorder != nil {
		a.Recorder.Eventf(node, nil, eventType, reason, eventAction, "%s", note)
	}
}

// summary says what a person looking at the node needs to know, in one line.
func summary(f gpufacts.Facts) (eventType, reason, note string) {
	switch {
	case f.NVML != gpufacts.NVMLOK:
		eventType, reason = corev1.EventTypeWarning, ReasonNVMLUnavailable
		note = "NVML cannot be read, so the node's GPU labels are removed until it can: " + f.Error
	case !f.Healthy:
		eventType, reason = corev1.EventTypeWarning, ReasonGPUUnhealthy
		note = fmt.Sprintf("labelled %s=false: %s", gpufacts.LabelHealthy, strings.Join(f.Problems, "; "))
	default:
		cuda := "unknown"
		if f.CUDA != nil {
			cuda = f.CUDA.String()
		}
		eventType, reason = corev1.EventTypeNormal, ReasonGPUFacts
		note = fmt.Sprintf("driver %s, supports CUDA %s, %d GPUs%s", f.DriverVersion, cuda, len(f.GPUs), products(f.GPUs))
	}
	if len(note) > maxNote {
		note = strings.ToValidUTF8(note[:maxNote-3], "") + "..."
	}
	return eventType, reason, note
}

// products names the distinct GPU products, e.g. " (8× NVIDIA A100-SXM4-80GB)".
func products(gpus []gpufacts.GPU) string {
	var names []string
	count := map[string]int{}
	for _, g := range gpus {
		if count[g.Product] == 0 {
			names = append(names, g.Product)
		}
		count[g.Product]++
	}
	if len(names) == 0 {
		return ""
	}
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%d× %s", count[n], n)
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
