package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/gpufacts"
)

// GPUResource is the resource a node must have capacity of to be a GPU node, on which the
// node agent is expected.
const GPUResource corev1.ResourceName = "nvidia.com/gpu"

// Phases are the values of trainenv_environments' phase label. Every one is exported, 0
// included, so that absent() in an alert means no manager is scraped.
var Phases = []trainenvv1.Phase{
	trainenvv1.PhasePending, trainenvv1.PhaseStarting, trainenvv1.PhaseRunning,
	trainenvv1.PhaseSuspended, trainenvv1.PhaseFailed,
}

var (
	environmentsDesc = prometheus.NewDesc("trainenv_environments",
		"TrainingEnvironments by status.phase (one not yet reconciled counts as Pending).", []string{"phase"}, nil)
	gpusRequestedDesc = prometheus.NewDesc("trainenv_gpus_requested",
		"GPUs requested by TrainingEnvironments that are not suspended.", nil, nil)
	gpusRunningDesc = prometheus.NewDesc("trainenv_gpus_running",
		"GPUs held by TrainingEnvironments in phase Running.", nil, nil)
	nodeAgentUpDesc = prometheus.NewDesc("trainenv_node_agent_up",
		"1 when the node agent's facts on a GPU node are fresh (trainenv.io/nvml label, heartbeat within 15 minutes), else 0.",
		[]string{"node"}, nil)
)

// State computes the cluster-state gauges at scrape time from a reader, the manager's
// informer cache: a count kept by hand could drift (a missed deletion, a restart), a count
// of the cache cannot. Every replica's cache serves it, leader or not.
type State struct {
	Reader client.Reader
	// Now is the clock for heartbeat freshness (default time.Now).
	Now func() time.Time
	// Timeout bounds one read of the cache (default 5 s), e.g. before it has synced.
	Timeout time.Duration
	Log     logr.Logger
}

var _ prometheus.Collector = (*State)(nil)

// Describe implements prometheus.Collector.
func (s *State) Describe(ch chan<- *prometheus.Desc) {
	ch <- environmentsDesc
	ch <- gpusRequestedDesc
	ch <- gpusRunningDesc
	ch <- nodeAgentUpDesc
}

// Collect implements prometheus.Collector. A list that fails leaves its series out of this
// scrape (logged) rather than failing the scrape: stale counts are worse than none, and
// absent() alerts on a manager that can no longer tell.
func (s *State) Collect(ch chan<- prometheus.Metric) {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.collectEnvironments(ctx, ch); err != nil {
		s.Log.V(1).Info("metrics: cannot list TrainingEnvironments", "error", err.Error())
	}
	if err := s.collectNodes(ctx, ch); err != nil {
		s.Log.V(1).Info("metrics: cannot list nodes", "error", err.Error())
	}
}

func (s *State) collectEnvironments(ctx context.Context, ch chan<- prometheus.Metric) error {
	var list trainenvv1.TrainingEnvironmentList
	// Read only: no copy of every object per scrape.
	if err := s.Reader.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	byPhase := map[trainenvv1.Phase]float64{}
	var requested, running float64
	for i := range list.Items {
		te := &list.Items[i]
		phase := te.Status.Phase
		if phase == "" {
			phase = trainenvv1.PhasePending
		}
		byPhase[phase]++
		gpus := 0.0
		if te.Spec.GPU != nil {
			gpus = float64(te.Spec.GPU.Count)
		}
		if !te.Spec.Suspend {
			requested += gpus
		}
		if phase == trainenvv1.PhaseRunning {
			running += gpus
		}
	}
	for _, p := range Phases {
		ch <- prometheus.MustNewConstMetric(environmentsDesc, prometheus.GaugeValue, byPhase[p], string(p))
	}
	ch <- prometheus.MustNewConstMetric(gpusRequestedDesc, prometheus.GaugeValue, requested)
	ch <- prometheus.MustNewConstMetric(gpusRunningDesc, prometheus.GaugeValue, running)
	return nil
}

func (s *State) collectNodes(ctx context.Context, ch chan<- prometheus.Metric) error {
	var nodes corev1.NodeList
	if err := s.Reader.List(ctx, &nodes, client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	at := now()
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if gpus, ok := n.Status.Capacity[GPUResource]; !ok || gpus.Sign() <= 0 {
			continue
		}
		up := 0.0
		if gpufacts.AgentUp(n.Labels, n.Annotations, at) {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(nodeAgentUpDesc, prometheus.GaugeValue, up, n.Name)
	}
	return nil
}

// RegisterState registers s with controller-runtime's registry and returns the function
// that unregisters it (tests start several managers in one process).
func RegisterState(s *State) (unregister func(), err error) {
	if err := ctrlmetrics.Registry.Register(s); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			return nil, errors.New("a State collector is already registered: unregister it first")
		}
		return nil, err
	}
	return func() { ctrlmetrics.Registry.Unregister(s) }, nil
}
