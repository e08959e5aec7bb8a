package compat

import (
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/trainenv/trainenv/internal/cuda"
)

// Every pass of every environment checks every node: at 1,000 nodes, parsing the nodes'
// labels again each time was a third of the manager's CPU (docs/benchmarks.md). A node's
// facts change only with its labels, hence with its resourceVersion: they are parsed once
// per node and version and kept here.

// maxCachedNodes bounds the memo; past it, it starts over (nodes removed from the cluster
// leave entries behind, and re-parsing is cheap next to leaking).
const maxCachedNodes = 16384

type parsedNode struct {
	resourceVersion string
	// facts holds the facts of each scheme, in the order of schemes.
	facts []cuda.Node
	// key is the same for nodes with the same facts: a pool of nodes shares one verdict
	// (evaluating a requirement parses its versions again, per node).
	key string
}

var nodeFactsMemo = struct {
	sync.RWMutex
	byUID map[types.UID]parsedNode
}{byUID: map[types.UID]parsedNode{}}

// schemeFacts returns the facts each scheme reads from n's labels, from the memo when n is
// an API object (UID and resourceVersion set) seen at this version before.
func schemeFacts(n *corev1.Node) parsedNode {
	if n.UID == "" || n.ResourceVersion == "" {
		return parseSchemes(n)
	}
	nodeFactsMemo.RLock()
	p, ok := nodeFactsMemo.byUID[n.UID]
	nodeFactsMemo.RUnlock()
	if ok && p.resourceVersion == n.ResourceVersion {
		return p
	}
	p = parseSchemes(n)
	nodeFactsMemo.Lock()
	if len(nodeFactsMemo.byUID) >= maxCachedNodes {
		clear(nodeFactsMemo.byUID)
	}
	nodeFactsMemo.byUID[n.UID] = p
	nodeFactsMemo.Unlock()
	return p
}

func parseSchemes(n *corev1.Node) parsedNode {
	p := parsedNode{resourceVersion: n.ResourceVersion, facts: make([]cuda.Node, len(schemes))}
	for i, s := range schemes {
		p.facts[i] = s.facts(n.Labels)
	}
	p.key = fmt.Sprintf("%v", p.facts)
	return p
}

// verdicts memoises, within one Check, whether the requirements hold for each distinct set
// of facts.
type verdicts struct {
	rs     cuda.Requirements
	byFact map[string]bool
}

func (v *verdicts) holds(p parsedNode) bool {
	ok, seen := v.byFact[p.key]
	if !seen {
		ok = holds(v.rs, p.facts)
		v.byFact[p.key] = ok
	}
	return ok
}
