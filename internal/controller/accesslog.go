package controller

import (
	"context"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/log"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/accesslog"
	"github.com/trainenv/trainenv/internal/workload"
)

// The access audit trail reaches Kubernetes through the main container's log. The
// environment's pod has no API token (by design: nothing in it may write to the cluster),
// so the entrypoint cannot post Events or status itself; it writes one JSON line per access
// and per change of its idle account (internal/accesslog), and the controller reads them
// back with pods/log. Other channels were weighed: a file in a volume needs a reader on the
// node (the node agent runs only on GPU nodes and has no business with user access); the
// termination message is written once, at exit; an exec into the pod to read a file costs
// more than a log read and needs pods/exec, the permission an audit must watch. The log is
// also what a cluster's log collector ships, so the Events and status agree with it.
//
// Cost: one GET pods/log per running environment with SSH or Jupyter every
// accessLogEvery (two after a restart of its container; not per pass: the pass that finds
// it due does it), from sinceTime = the
// last event read, capped at accessLogLimit bytes. At 5,000 environments that is about
// 17 log requests a second through the API server to the kubelets, each usually a few
// hundred bytes; status and Events are written only when something was read.
const (
	// accessLogEvery is how often an environment's log is read. It matches the periodic
	// re-read of authorized_keys, so an SSH environment gains no extra pass; a Jupyter-only
	// one gains one pass per period.
	accessLogEvery = 5 * time.Minute
	// accessLogLimit caps one read: a reconnect storm of 100,000 lines is summed up from
	// its first part (the next read goes on from where this one stopped).
	accessLogLimit = 256 * 1024
)

// LogReader reads a container's log from a time on: the kubelet through the API server
// in the manager (PodLogs), a fake in tests (envtest has no kubelet).
type LogReader interface {
	ReadLog(ctx context.Context, req LogRequest) ([]byte, error)
}

// LogRequest is one read of a container's log.
type LogRequest struct {
	Pod       types.NamespacedName
	Container string
	// Previous reads the container's previous instance (before its last restart).
	Previous bool
	// Since: lines from this time on (whole seconds, as the API takes it); zero: all.
	Since      time.Time
	LimitBytes int64
}

// PodLogs reads container logs with pods/log.
type PodLogs struct{ Client kubernetes.Interface }

// ReadLog reads the log req asks for.
func (l PodLogs) ReadLog(ctx context.Context, req LogRequest) ([]byte, error) {
	opts := &corev1.PodLogOptions{Container: req.Container, Previous: req.Previous, LimitBytes: &req.LimitBytes}
	if !req.Since.IsZero() {
		st := metav1.NewTime(req.Since)
		opts.SinceTime = &st
	}
	return l.Client.CoreV1().Pods(req.Pod.Namespace).GetLogs(req.Pod.Name, opts).DoRaw(ctx)
}

// accessLogs remembers, per environment, when its log was last read and the latest event
// read, so that a read starts where the last one stopped. In memory: after a restart each
// environment's log is read once from its pod's start (capped), and events already summed
// up before are not announced again (their time is not after status.lastAccess or
// status.activity).
type accessLogs struct{ seen sync.Map } // types.NamespacedName → accessLogMark

type accessLogMark struct {
	pod      types.UID
	restarts int32 // of the main container, when last read
	readAt   time.Time
	through  time.Time
}

// observeAccess reads the environment's audit trail when due and records what it says:
// status.lastAccess and status.activity and one Event per read. This file is the only
// writer of those two fields.
func (r *TrainingEnvironmentReconciler) observeAccess(ctx context.Context, p *pass) error {
	te := p.te
	if !meta.IsStatusConditionTrue(te.Status.Conditions, trainenvv1.ConditionWorkloadReady) {
		te.Status.Activity = nil // no pod runs: nothing is counted
		return nil
	}
	if r.AccessLogs == nil || (!workload.SSHEnabled(te) && !workload.JupyterEnabled(te)) {
		return nil
	}
	p.requeueAfter(accessLogEvery)
	key := types.NamespacedName{Namespace: te.Namespace, Name: te.Name}
	now := r.Clock.Now()
	mark, _ := r.accessLog.seen.Load(key)
	last, _ := mark.(accessLogMark)
	pod, restarts := r.mainContainer(ctx, te)
	if last.pod == pod && !last.readAt.IsZero() && now.Sub(last.readAt) < accessLogEvery {
		return nil
	}
	next := accessLogMark{pod: pod, restarts: restarts, readAt: now, through: last.through}
	if next.pod != last.pod {
		next.through = time.Time{} // a new pod: its log starts afresh
	}
	since := recordedThrough(te, next.through)
	// The container restarted since the last read: the end of its previous run is in the
	// previous instance's log (the kubelet keeps one).
	previous := next.pod == last.pod && !last.readAt.IsZero() && restarts > last.restarts
	data, err := r.readTrail(ctx, te, since, previous)
	if err != nil {
		// Not the pass's failure: the environment runs; the next read tries again.
		log.FromContext(ctx).V(1).Info("cannot read the audit trail from the pod's log", "error", err.Error())
		next.restarts = last.restarts
		r.accessLog.seen.Store(key, next)
		return nil
	}
	window := accessLogEvery
	if !last.readAt.IsZero() {
		window = now.Sub(last.readAt)
	}
	s := accesslog.Summarize(accesslog.Read(data, since), window)
	if s.Through.After(next.through) {
		next.through = s.Through
	}
	r.accessLog.seen.Store(key, next)
	recordAccess(te, s)
	r.announceAccess(te, s)
	return nil
}

// readTrail reads the main container's log from since, after its previous instance's when
// previous is set.
func (r *TrainingEnvironmentReconciler) readTrail(ctx context.Context, te *trainenvv1.TrainingEnvironment, since time.Time, previous bool) ([]byte, error) {
	req := LogRequest{Pod: types.NamespacedName{Namespace: te.Namespace, Name: workload.PodName(te)},
		Container: workload.ContainerName, Since: since, LimitBytes: accessLogLimit}
	var earlier []byte
	if previous {
		req.Previous = true
		old, err := r.AccessLogs.ReadLog(ctx, req)
		if err != nil {
			return nil, err
		}
		earlier = old
		req.Previous = false
	}
	current, err := r.AccessLogs.ReadLog(ctx, req)
	if err != nil {
		return nil, err
	}
	if earlier == nil {
		return current, nil
	}
	return slices.Concat(earlier, []byte("\n"), current), nil
}

// mainContainer is the UID of the environment's pod and its main container's restart count
// ("" when the pod cannot be read).
func (r *TrainingEnvironmentReconciler) mainContainer(ctx context.Context, te *trainenvv1.TrainingEnvironment) (types.UID, int32) {
	pod := &corev1.Pod{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: te.Namespace, Name: workload.PodName(te)}, pod); err != nil {
		return "", 0
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == workload.ContainerName {
			return pod.UID, cs.RestartCount
		}
	}
	return pod.UID, 0
}

// recordedThrough is where to read from: the latest event read in memory, or, after a
// restart of the manager, the latest one status records.
func recordedThrough(te *trainenvv1.TrainingEnvironment, inMemory time.Time) time.Time {
	through := inMemory
	if a := te.Status.LastAccess; a != nil && a.Time.After(through) {
		through = a.Time.Time
	}
	if a := te.Status.Activity; a != nil && a.ObservedAt.After(through) {
		through = a.ObservedAt.Time
	}
	return through
}

// recordAccess writes what a read of the trail says into status.lastAccess and
// status.activity: a pure function of the status and the summary.
func recordAccess(te *trainenvv1.TrainingEnvironment, s accesslog.Summary) {
	if ev := s.LastAccess; ev != nil {
		te.Status.LastAccess = &trainenvv1.LastAccessStatus{
			Time: metav1.NewTime(ev.At()), Kind: ev.Kind(), Event: ev.Event,
			User: ev.User, KeyFingerprint: ev.KeyFingerprint, KeyComment: ev.KeyComment,
		}
	}
	if ev := s.Activity; ev != nil {
		a := &trainenvv1.ActivityStatus{InUse: ev.InUse == nil || *ev.InUse, Summary: ev.Activity, ObservedAt: metav1.NewTime(ev.At())}
		if at, err := time.Parse(time.RFC3339, ev.IdleSince); err == nil && !a.InUse {
			a.IdleSince = ptrTime(at)
		}
		te.Status.Activity = a
	}
}

// announceAccess records one Event for a read that found accesses or refusals.
func (r *TrainingEnvironmentReconciler) announceAccess(te *trainenvv1.TrainingEnvironment, s accesslog.Summary) {
	switch {
	case s.Note == "":
	case s.Accesses == 0:
		r.event(te, corev1.EventTypeWarning, trainenvv1.ReasonAccessRefused, "Access", "%s", s.Note)
	default:
		r.event(te, corev1.EventTypeNormal, trainenvv1.ReasonAccessed, "Access", "%s", s.Note)
	}
}
