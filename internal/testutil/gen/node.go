package gen

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/trainenv/trainenv/internal/gpufacts"
)

// NodeModifier edits a Node being built.
type NodeModifier func(*corev1.Node)

// GPUResource is the extended resource that NVIDIA's device plugin advertises.
const GPUResource corev1.ResourceName = "nvidia.com/gpu"

// Node returns a node named name, edited by mods in order. GPU facts are written as GPU
// Feature Discovery labels them (WithDriver, WithCUDA, WithCompute); LabelledByAgent or
// LabelledByDeprecatedGFD, placed after them, rewrites them in another scheme.
func Node(name string, mods ...NodeModifier) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, m := range mods {
		m(n)
	}
	return n
}

// WithNodeGenerateName sets metadata.generateName (and clears the name).
func WithNodeGenerateName(prefix string) NodeModifier {
	return func(n *corev1.Node) { n.Name, n.GenerateName = "", prefix }
}

// WithNodeLabels adds labels.
func WithNodeLabels(labels map[string]string) NodeModifier {
	return func(n *corev1.Node) {
		for k, v := range labels {
			setLabel(n, k, v)
		}
	}
}

// WithNodeAnnotations adds annotations.
func WithNodeAnnotations(annotations map[string]string) NodeModifier {
	return func(n *corev1.Node) {
		if n.Annotations == nil && annotations != nil {
			n.Annotations = map[string]string{}
		}
		for k, v := range annotations {
			n.Annotations[k] = v
		}
	}
}

// WithGPUProduct sets the GPU product label, e.g. "NVIDIA-A100-SXM4-80GB".
func WithGPUProduct(product string) NodeModifier {
	return func(n *corev1.Node) { setLabel(n, gpufacts.LabelProduct, product) }
}

// WithGPUs sets the node's capacity and allocatable of nvidia.com/gpu.
func WithGPUs(count int64) NodeModifier {
	return WithGPUCapacity(count, true)
}

// WithGPUCapacity sets the node's capacity of nvidia.com/gpu and, when allocatable, its
// allocatable too.
func WithGPUCapacity(count int64, allocatable bool) NodeModifier {
	return func(n *corev1.Node) {
		if n.Status.Capacity == nil {
			n.Status.Capacity = corev1.ResourceList{}
		}
		n.Status.Capacity[GPUResource] = *resource.NewQuantity(count, resource.DecimalSI)
		if allocatable {
			if n.Status.Allocatable == nil {
				n.Status.Allocatable = corev1.ResourceList{}
			}
			n.Status.Allocatable[GPUResource] = *resource.NewQuantity(count, resource.DecimalSI)
		}
	}
}

// WithDriver labels the driver version ("535.104.05") as GPU Feature Discovery does:
// major, minor and revision.
func WithDriver(version string) NodeModifier {
	return func(n *corev1.Node) {
		d := strings.Split(version, ".")
		setLabel(n, gpufacts.LabelDriverMajor, d[0])
		setLabel(n, gpufacts.LabelDriverMinor, part(d, 1))
		setLabel(n, gpufacts.LabelDriverRevision, part(d, 2))
	}
}

// WithCUDA labels the CUDA version the driver supports ("12.2") as GPU Feature Discovery
// does: major and minor.
func WithCUDA(version string) NodeModifier {
	return func(n *corev1.Node) {
		c := strings.Split(version, ".")
		setLabel(n, gpufacts.LabelCUDAMajor, c[0])
		setLabel(n, gpufacts.LabelCUDAMinor, part(c, 1))
	}
}

// WithCompute labels the GPU's compute capability ("8.0"): major and minor.
func WithCompute(capability string) NodeModifier {
	return func(n *corev1.Node) {
		a := strings.Split(capability, ".")
		setLabel(n, gpufacts.LabelComputeMajor, a[0])
		setLabel(n, gpufacts.LabelComputeMinor, part(a, 1))
	}
}

// WithBrand sets the GPU brand label the node agent writes ("nvidia", "tesla").
func WithBrand(brand string) NodeModifier {
	return func(n *corev1.Node) { setLabel(n, gpufacts.LabelBrand, brand) }
}

// LabelledByAgent rewrites the driver, CUDA and compute labels set before it as the node
// agent writes them: one integer label each (535.104.05 → 535104005, 12.2 → 12020,
// 8.0 → 80). It keeps the product and brand labels.
func LabelledByAgent() NodeModifier {
	return func(n *corev1.Node) {
		if d, ok := take(n, gpufacts.LabelDriverMajor, gpufacts.LabelDriverMinor, gpufacts.LabelDriverRevision); ok {
			setLabel(n, gpufacts.LabelDriverInt, fmt.Sprint(d[0]*1_000_000+d[1]*1000+d[2]))
		}
		if c, ok := take(n, gpufacts.LabelCUDAMajor, gpufacts.LabelCUDAMinor); ok {
			setLabel(n, gpufacts.LabelCUDAInt, fmt.Sprint(c[0]*1000+c[1]*10))
		}
		if a, ok := take(n, gpufacts.LabelComputeMajor, gpufacts.LabelComputeMinor); ok {
			setLabel(n, gpufacts.LabelComputeInt, fmt.Sprint(a[0]*10+a[1]))
		}
	}
}

// LabelledByDeprecatedGFD moves the driver and CUDA labels set before it to the names
// older GPU Feature Discovery releases used; compute labels keep their names.
func LabelledByDeprecatedGFD() NodeModifier {
	moves := [][2]string{
		{gpufacts.LabelDriverMajor, gpufacts.LabelDeprecatedDriverMajor},
		{gpufacts.LabelDriverMinor, gpufacts.LabelDeprecatedDriverMinor},
		{gpufacts.LabelDriverRevision, gpufacts.LabelDeprecatedDriverRevision},
		{gpufacts.LabelCUDAMajor, gpufacts.LabelDeprecatedCUDAMajor},
		{gpufacts.LabelCUDAMinor, gpufacts.LabelDeprecatedCUDAMinor},
	}
	return func(n *corev1.Node) {
		for _, m := range moves {
			if v, ok := n.Labels[m[0]]; ok {
				delete(n.Labels, m[0])
				setLabel(n, m[1], v)
			}
		}
	}
}

func setLabel(n *corev1.Node, k, v string) {
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	n.Labels[k] = v
}

func part(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return ""
}

// take removes the labels keys and returns their values as integers (0 where one does not
// parse); ok is false, and nothing is removed, when the first key is absent.
func take(n *corev1.Node, keys ...string) ([]int, bool) {
	if _, ok := n.Labels[keys[0]]; !ok {
		return nil, false
	}
	out := make([]int, len(keys))
	for i, k := range keys {
		out[i], _ = strconv.Atoi(n.Labels[k])
		delete(n.Labels, k)
	}
	return out, true
}
