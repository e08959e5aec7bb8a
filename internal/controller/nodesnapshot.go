package controller

import (
	"context"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// nodeSnapshot keeps the list of cached nodes between passes. Listing them on every pass
// built a fresh slice of every node (about 3 MB at 1,000 nodes) per pass: with 8 workers,
// 22 MB of the manager's heap at any moment and most of its garbage (docs/benchmarks.md).
// The list is taken again only after the node watch saw a change that can matter to the
// compatibility check (new or removed nodes, labels, allocatable: nodeFactsChanged).
type nodeSnapshot struct {
	// watched is set when the node watch is set up: without it (a reconciler driven by
	// hand, in tests) every pass lists the nodes.
	watched atomic.Bool
	// version counts the node changes the watch passed on.
	version atomic.Uint64
	mu      sync.Mutex
	taken   uint64 // version + 1 when nodes was listed; 0: never
	nodes   []corev1.Node
}

// changed records a node change that passed the watch's predicate.
func (s *nodeSnapshot) changed() { s.version.Add(1) }

// list returns the cached nodes as of the last change seen. The objects are the cache's:
// read only.
func (s *nodeSnapshot) list(ctx context.Context, c client.Reader) ([]corev1.Node, error) {
	var nodes corev1.NodeList
	if !s.watched.Load() {
		err := c.List(ctx, &nodes, client.UnsafeDisableDeepCopy)
		return nodes.Items, err
	}
	v := s.version.Load() // read before listing: a change during the list forces a new one
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.taken == v+1 {
		return s.nodes, nil
	}
	if err := c.List(ctx, &nodes, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	s.nodes, s.taken = nodes.Items, v+1
	return s.nodes, nil
}
