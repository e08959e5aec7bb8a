// Command node-agent runs on each GPU node (config/agent): it reads the node's GPU facts
// with NVML and publishes them as labels and an annotation on that node only. It links
// NVML through cgo (go-nvml loads libnvidia-ml.so.1 at run time), which the manager does not.
package main

import (
	"context"
	"flag"
	"os"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/trainenv/trainenv/internal/gpufacts"
	"github.com/trainenv/trainenv/internal/nodeagent"
)

func main() {
	var (
		interval time.Duration
		nodeName string
	)
	flag.DurationVar(&interval, "interval", nodeagent.DefaultInterval, "How often to read NVML and publish what changed (also the retry interval when NVML fails). At most 5m: the heartbeat the manager watches is refreshed on a pass.")
	flag.StringVar(&nodeName, "node-name", os.Getenv("NODE_NAME"), "The node this agent runs on; defaults to $NODE_NAME, set from the downward API (spec.nodeName).")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	log := zap.New(zap.UseFlagOptions(&opts))
	ctrl.SetLogger(log)

	if err := run(ctrl.SetupSignalHandler(), log, nodeName, interval); err != nil {
		log.Error(err, "node agent exited")
		os.Exit(1)
	}
}

func run(ctx context.Context, log logr.Logger, nodeName string, interval time.Duration) error {
	if nodeName == "" {
		return nodeagent.ErrNoNodeName
	}
	if interval > gpufacts.HeartbeatInterval {
		// A longer interval would let the heartbeat go stale between passes.
		log.Info("--interval is longer than the heartbeat interval; using the heartbeat interval", "interval", interval, "heartbeat", gpufacts.HeartbeatInterval)
		interval = gpufacts.HeartbeatInterval
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: clientgoscheme.Scheme})
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: cs.EventsV1()})
	if err := broadcaster.StartRecordingToSinkWithContext(ctx); err != nil {
		return err
	}
	defer broadcaster.Shutdown()

	agent := &nodeagent.Agent{
		NVML:      nvml.New(),
		Publisher: &nodeagent.Publisher{Client: c, NodeName: nodeName},
		Recorder:  broadcaster.NewRecorder(clientgoscheme.Scheme, nodeagent.FieldManager),
		Interval:  interval,
		Log:       log.WithName("node-agent").WithValues("node", nodeName),
	}
	log.Info("node agent starting", "node", nodeName, "interval", interval)
	return agent.Run(ctx)
}
