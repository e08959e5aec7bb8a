//go:build scalebench

package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// pool is a group of identical simulated GPU nodes, labelled as NVIDIA GPU feature
// discovery labels real ones (the same labels as up.sh's nodes).
type pool struct {
	name, instance, product, family string
	share                           int // per mille of the nodes
	gpus, memMiB                    int
	driver, cuda, compute           string
}

// pools span drivers from CUDA 11.4 to 13.0, so that each image's requirement admits a
// different subset of them. Nodes have 16 GPUs, twice the usual, so that placement never
// runs out: the scheduler does not score extended resources, and pods that fit anywhere
// may fill the pools that the newest CUDA images need (12.9: H100 and L40S; 13.0: L40S).
var pools = []pool{
	{"a100", "p4de.24xlarge", "NVIDIA-A100-SXM4-80GB", "ampere", 300, 16, 81920, "550.54.15", "12.4", "8.0"},
	{"h100", "p5.48xlarge", "NVIDIA-H100-80GB-HBM3", "hopper", 300, 16, 81920, "575.57.08", "12.9", "9.0"},
	{"l40s", "g6e.48xlarge", "NVIDIA-L40S", "ada-lovelace", 200, 16, 46068, "580.65.06", "13.0", "8.9"},
	{"a10g", "g5.48xlarge", "NVIDIA-A10G", "ampere", 100, 16, 23028, "535.183.01", "12.2", "8.6"},
	{"t4", "g4dn.metal", "Tesla-T4", "turing", 100, 16, 15360, "470.256.02", "11.4", "7.5"},
}

// createNodes creates n kwok GPU nodes over the pools and waits until all are Ready and
// schedulable.
func createNodes(ctx context.Context, cl *cluster, n int) error {
	var nodes []*corev1.Node
	for i, p := range pools {
		count := n * p.share / 1000
		if i == len(pools)-1 {
			count = n - len(nodes)
		}
		for j := range count {
			nodes = append(nodes, gpuNode(p, fmt.Sprintf("bench-%s-%04d", p.name, j)))
		}
	}
	logf("creating %d GPU nodes in %d pools", len(nodes), len(pools))
	start := time.Now()
	err := parallel(ctx, len(nodes), 16, 0, func(i int) error { return ensure(ctx, cl.c, nodes[i]) })
	if err != nil {
		return err
	}
	// TaintNodesByCondition adds not-ready at creation; with neither kubelet nor the node
	// lifecycle controller nothing removes it (as in up.sh).
	untainted := map[string]bool{}
	return poll(ctx, "nodes Ready", len(nodes), time.Minute, 3*time.Minute, func() (int, error) {
		var list corev1.NodeList
		if err := cl.c.List(ctx, &list, client.MatchingLabels{"type": "kwok-bench"}); err != nil {
			return 0, err
		}
		done := 0
		for i := range list.Items {
			node := &list.Items[i]
			if !nodeReady(node) {
				continue
			}
			if !untainted[node.Name] {
				patch := []byte(`{"spec":{"taints":[{"key":"nvidia.com/gpu","value":"present","effect":"NoSchedule"}]}}`)
				if err := cl.c.Patch(ctx, node, client.RawPatch(types.MergePatchType, patch)); err != nil {
					return done, err
				}
				untainted[node.Name] = true
			}
			done++
		}
		if done == len(nodes) {
			logf("%d nodes Ready and schedulable in %s", done, time.Since(start).Round(time.Millisecond))
		}
		return done, nil
	})
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func gpuNode(p pool, name string) *corev1.Node {
	d, c, cc := strings.Split(p.driver, "."), strings.Split(p.cuda, "."), strings.Split(p.compute, ".")
	res := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("96"), corev1.ResourceMemory: resource.MustParse("1024Gi"),
		corev1.ResourcePods: resource.MustParse("110"), corev1.ResourceEphemeralStorage: resource.MustParse("1Ti"),
		"nvidia.com/gpu": *resource.NewQuantity(int64(p.gpus), resource.DecimalSI),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
			Labels: map[string]string{
				"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
				"node.kubernetes.io/instance-type": p.instance, "dev.trainenv.io/pool": p.name, "type": "kwok-bench",
				"nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": p.product,
				"nvidia.com/gpu.count": fmt.Sprint(p.gpus), "nvidia.com/gpu.memory": fmt.Sprint(p.memMiB),
				"nvidia.com/gpu.family": p.family, "nvidia.com/gpu.compute.major": cc[0], "nvidia.com/gpu.compute.minor": cc[1],
				"nvidia.com/cuda.driver-version.major": d[0], "nvidia.com/cuda.driver-version.minor": d[1],
				"nvidia.com/cuda.driver-version.revision": d[2], "nvidia.com/cuda.driver-version.full": p.driver,
				"nvidia.com/cuda.runtime-version.major": c[0], "nvidia.com/cuda.runtime-version.minor": c[1],
				"nvidia.com/cuda.runtime-version.full": p.cuda,
			},
		},
		Spec:   corev1.NodeSpec{Taints: []corev1.Taint{{Key: "nvidia.com/gpu", Value: "present", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{Capacity: res, Allocatable: res},
	}
}
