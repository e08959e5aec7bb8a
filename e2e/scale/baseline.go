//go:build scalebench

package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/compat"
	"github.com/trainenv/trainenv/internal/cuda"
	"github.com/trainenv/trainenv/internal/workload"
)

// barePod is the pod environment te would run, created directly: trainenv's own pod
// template for it (the same image by digest, GPU request, node affinity, security context
// and init containers), without the operator. te carries the API server's defaults.
func barePod(te *trainenvv1.TrainingEnvironment, img benchImage) (*corev1.Pod, error) {
	// As the controller reads them: NVIDIA_REQUIRE_*, and the torch architectures.
	values := cuda.ImageRequirementValues(img.env)
	if arch, ok := cuda.TorchArchRequirement(img.env); ok {
		values = append(values, arch)
	}
	rs, err := cuda.FromValues(values, "the image's NVIDIA_REQUIRE_CUDA")
	if err != nil {
		return nil, err
	}
	affinity, err := compat.Affinity(rs, nil)
	if err != nil {
		return nil, err
	}
	in := workload.Inputs{PinnedImage: pinned(img), Affinity: affinity, ToolsImage: "trainenv/manager:dev", CUDARequirements: values}
	tmpl := workload.StatefulSet(te, in).Spec.Template
	return &corev1.Pod{
		// Not the environment label: the manager must not take these pods for its own.
		ObjectMeta: metav1.ObjectMeta{Name: te.Name, Namespace: te.Namespace, Labels: map[string]string{bareLabel: "true"}},
		Spec:       tmpl.Spec,
	}, nil
}

func pinned(img benchImage) string {
	return img.tag[:strings.LastIndex(img.tag, ":")] + "@" + img.digest
}

// runBaseline creates cfg.envs bare pods at cfg.rate, waits until all run, and deletes them
// again (they hold the GPUs the environments need).
func runBaseline(ctx context.Context, cl *cluster, w *watcher, cfg config, imgs []benchImage) (*result, error) {
	n := cfg.envs
	logf("baseline: creating %d bare pods at %.0f/s", n, cfg.rate)
	r := &result{name: "bare pods", n: n}
	pods := make([]*corev1.Pod, n)
	keys, created := make([]string, n), make([]time.Time, n)
	defaulted := map[int]*trainenvv1.TrainingEnvironment{}
	for i := range n {
		te := benchEnv(cfg, "bare", i, imgs[i%len(imgs)], false)
		// The spec as the API server stores it, defaults included (a dry run writes nothing).
		d, ok := defaulted[i%len(imgs)]
		if !ok {
			d = te.DeepCopy()
			if err := cl.c.Create(ctx, d, client.DryRunAll); err != nil {
				return r, err
			}
			defaulted[i%len(imgs)] = d
		}
		te.Spec = d.Spec
		p, err := barePod(te, imgs[i%len(imgs)])
		if err != nil {
			return r, err
		}
		pods[i], keys[i] = p, p.Namespace+"/"+p.Name
	}
	before, err := takeSnapshot(ctx, cl, nil)
	if err != nil {
		return r, err
	}
	err = parallel(ctx, n, cfg.workers, cfg.rate, func(i int) error {
		if err := cl.c.Create(ctx, pods[i].DeepCopy()); err != nil {
			return fmt.Errorf("creating pod %s: %w", keys[i], err)
		}
		created[i] = time.Now()
		return nil
	})
	if err != nil {
		return r, err
	}
	if err := poll(ctx, "bare pods Running", n, cfg.stall, cfg.timeout, func() (int, error) {
		return w.count(w.running, keys), nil
	}); err != nil {
		return r, err
	}
	running := w.times(w.running, keys)
	r.converge, r.toFinal = span(created, running), durations(created, running)
	logf("%d bare pods Running in %s", n, r.converge.Round(time.Millisecond))
	if err := r.finish(ctx, cl, nil, before); err != nil {
		return r, err
	}
	return r, deleteBarePods(ctx, cl, w, cfg)
}

func deleteBarePods(ctx context.Context, cl *cluster, w *watcher, cfg config) error {
	sel := labels.SelectorFromSet(labels.Set{bareLabel: "true"})
	err := parallel(ctx, cfg.namespaces, 8, 0, func(i int) error {
		return cl.c.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(nsName(i)),
			client.MatchingLabelsSelector{Selector: sel}, client.GracePeriodSeconds(0))
	})
	if err != nil {
		return err
	}
	return poll(ctx, "bare pods deleted", cfg.envs, cfg.stall, cfg.timeout, func() (int, error) {
		left, err := w.barePods(ctx)
		return cfg.envs - left, err
	})
}
