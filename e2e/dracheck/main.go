// Command dracheck checks, on the local cluster (make dev), that the real kube-scheduler
// allocates GPUs from the device selectors trainenv compiles from an image's CUDA
// requirement. It publishes ResourceSlices for the GPU nodes as NVIDIA's DRA driver would
// (their facts read from the nodes' GPU Feature Discovery labels), a DeviceClass, and for
// each case a ResourceClaimTemplate with the compiled selectors and a pod using it. A case
// the devices can satisfy must be bound with an allocation on a device that satisfies it,
// on a node of the expected pool; one they cannot must be refused by trainenv's check with
// the reason, and a pod created anyway must stay unscheduled. Everything it creates is
// deleted at the end.
//
// usage: go run ./e2e/dracheck   (KUBECONFIG names the cluster)
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/compat"
	"github.com/trainenv/trainenv/internal/cuda"
	"github.com/trainenv/trainenv/internal/gpufacts"
)

const (
	namespace = "dra-check"
	class     = "gpu.nvidia.com"
	timeout   = 60 * time.Second
)

type testCase struct {
	name     string
	require  string
	products []string
	pool     string // the pool that must get it; "" when nothing can
}

var cases = []testCase{
	{name: "cuda13", require: "cuda>=13.0", pool: "h100"},
	{name: "cuda124", require: "cuda>=12.4", pool: "a100|h100"},
	{name: "cuda114-t4", require: "cuda>=11.4", products: []string{"Tesla-T4"}, pool: "t4"},
	{name: "arch90", require: "arch>=9.0", pool: "h100"},
	{name: "a100-product", require: "cuda>=12.0", products: []string{"NVIDIA-A100-SXM4-80GB"}, pool: "a100"},
	{name: "cuda131", require: "cuda>=13.1"},
	{name: "arch100", require: "arch>=10.0"},
}

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "e2e dra:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), nil).ClientConfig()
	if err != nil {
		return err
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	defer cleanup(c)
	if err := setup(ctx, c); err != nil {
		return err
	}
	rslices, err := c.ResourceV1().ResourceSlices().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	passed := 0
	for _, tc := range cases {
		if err := check(ctx, c, tc, rslices.Items); err != nil {
			return fmt.Errorf("%s: %w", tc.name, err)
		}
		passed++
	}
	fmt.Printf("e2e dra: %d passed, 0 failed\n", passed)
	return nil
}

// setup creates the namespace, the DeviceClass and one ResourceSlice per GPU node.
func setup(ctx context.Context, c kubernetes.Interface) error {
	// A namespace left by an earlier run may still be terminating: wait until it is gone.
	if err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*timeout, true, func(ctx context.Context) (bool, error) {
		_, err := c.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}); err != nil {
		return fmt.Errorf("namespace %s of an earlier run is still there: %w", namespace, err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace, Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}}
	if _, err := c.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	// Pods need the namespace's default ServiceAccount, which kube-controller-manager creates.
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		_, err := c.CoreV1().ServiceAccounts(namespace).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		return fmt.Errorf("no default ServiceAccount in %s: %w", namespace, err)
	}
	dc := &resourceapi.DeviceClass{
		ObjectMeta: metav1.ObjectMeta{Name: class},
		Spec: resourceapi.DeviceClassSpec{Selectors: []resourceapi.DeviceSelector{{CEL: &resourceapi.CELDeviceSelector{
			Expression: fmt.Sprintf(`device.driver == %q && device.attributes[%q].type == "gpu"`, compat.DRADriverName, compat.DRADriverName),
		}}}},
	}
	if _, err := c.ResourceV1().DeviceClasses().Create(ctx, dc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "nvidia.com/gpu.present=true"})
	if err != nil {
		return err
	}
	if len(nodes.Items) == 0 {
		return errors.New("no GPU nodes (run make dev)")
	}
	for _, n := range nodes.Items {
		if _, err := c.ResourceV1().ResourceSlices().Create(ctx, driverSlice(n), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return nil
}

// driverSlice is the ResourceSlice NVIDIA's DRA driver publishes for node: one device per
// GPU with the driver's attributes, from the node's GPU Feature Discovery labels.
func driverSlice(n corev1.Node) *resourceapi.ResourceSlice {
	l := n.Labels
	semverOf := func(parts ...string) string {
		for len(parts) < 3 {
			parts = append(parts, "0")
		}
		for i, p := range parts {
			parts[i] = strings.TrimLeft(p, "0")
			if parts[i] == "" {
				parts[i] = "0"
			}
		}
		return strings.Join(parts, ".")
	}
	driver := semverOf(l[gpufacts.LabelDriverMajor], l[gpufacts.LabelDriverMinor], l[gpufacts.LabelDriverRevision])
	cudaVersion := semverOf(l[gpufacts.LabelCUDAMajor], l[gpufacts.LabelCUDAMinor])
	compute := semverOf(l[gpufacts.LabelComputeMajor], l[gpufacts.LabelComputeMinor])
	product := strings.ReplaceAll(l[gpufacts.LabelProduct], "-", " ")
	if product == "NVIDIA A100 SXM4 80GB" {
		product = "NVIDIA A100-SXM4-80GB" // NVML's own name; GFD joins words with hyphens
	}
	brand := "Nvidia"
	if strings.HasPrefix(product, "Tesla") {
		brand = "Tesla"
	}
	count, _ := strconv.Atoi(l[gpufacts.LabelCount]) // a node without the label publishes no devices
	s := &resourceapi.ResourceSlice{
		ObjectMeta: metav1.ObjectMeta{Name: n.Name + "-" + compat.DRADriverName},
		Spec: resourceapi.ResourceSliceSpec{
			Driver:   compat.DRADriverName,
			NodeName: ptr.To(n.Name),
			Pool:     resourceapi.ResourcePool{Name: n.Name, Generation: 1, ResourceSliceCount: 1},
		},
	}
	for i := range count {
		s.Spec.Devices = append(s.Spec.Devices, resourceapi.Device{
			Name: fmt.Sprintf("gpu-%d", i),
			Attributes: map[resourceapi.QualifiedName]resourceapi.DeviceAttribute{
				compat.AttrType:              {StringValue: ptr.To(compat.DeviceTypeGPU)},
				"uuid":                       {StringValue: ptr.To(fmt.Sprintf("GPU-%s-%d", n.Name, i))},
				compat.AttrProductName:       {StringValue: ptr.To(product)},
				compat.AttrBrand:             {StringValue: ptr.To(brand)},
				compat.AttrArchitecture:      {StringValue: ptr.To(l[gpufacts.LabelFamily])},
				compat.AttrDriverVersion:     {VersionValue: ptr.To(driver)},
				compat.AttrCUDADriverVersion: {VersionValue: ptr.To(cudaVersion)},
				compat.AttrComputeCapability: {VersionValue: ptr.To(compute)},
			},
		})
	}
	return s
}

func check(ctx context.Context, c kubernetes.Interface, tc testCase, rslices []resourceapi.ResourceSlice) error {
	rs, err := cuda.FromValues([]string{tc.require}, "the image's NVIDIA_REQUIRE_CUDA")
	if err != nil {
		return err
	}
	gpu := &trainenvv1.GPUSpec{Count: 1, DeviceClassName: class, Products: tc.products}
	verdict := compat.CheckDevices(gpu, rs, rslices)
	if verdict.OK != (tc.pool != "") {
		return fmt.Errorf("trainenv's check says %s: %s", verdict.Reason, verdict.Message)
	}
	selectors, err := compat.DeviceSelectors(rs, tc.products)
	if err != nil {
		return err
	}
	if err := createClaimAndPod(ctx, c, tc.name, selectors); err != nil {
		return err
	}
	if tc.pool == "" {
		if err := staysUnscheduled(ctx, c, tc.name); err != nil {
			return err
		}
		fmt.Printf("e2e dra: %s refused (%s): %s; the scheduler allocated nothing\n", tc.name, verdict.Reason, verdict.Message)
		return nil
	}
	node, device, err := allocated(ctx, c, tc.name)
	if err != nil {
		return err
	}
	pool := strings.SplitN(strings.TrimPrefix(node, "gpu-"), "-", 2)[0]
	if !strings.Contains("|"+tc.pool+"|", "|"+pool+"|") {
		return fmt.Errorf("bound to %s, want a node of pool %s", node, tc.pool)
	}
	facts, ok := findDevice(rslices, node, device)
	if !ok {
		return fmt.Errorf("allocated device %s/%s is in no slice", node, device)
	}
	if !compat.DeviceHolds(rs, tc.products, facts) {
		return fmt.Errorf("allocated device %s/%s (%+v) does not satisfy %s", node, device, facts, rs)
	}
	fmt.Printf("e2e dra: %s bound to %s with device %s (%s, driver %s, CUDA %s, compute %s)\n",
		tc.name, node, device, facts.Name, facts.Node.Driver, facts.Node.CUDA, facts.Node.Arch)
	return nil
}

func createClaimAndPod(ctx context.Context, c kubernetes.Interface, name string, selectors []string) error {
	var sel []resourceapi.DeviceSelector
	for _, s := range selectors {
		sel = append(sel, resourceapi.DeviceSelector{CEL: &resourceapi.CELDeviceSelector{Expression: s}})
	}
	tmpl := &resourceapi.ResourceClaimTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: resourceapi.ResourceClaimTemplateSpec{Spec: resourceapi.ResourceClaimSpec{Devices: resourceapi.DeviceClaim{
			Requests: []resourceapi.DeviceRequest{{Name: "gpus", Exactly: &resourceapi.ExactDeviceRequest{
				DeviceClassName: class, Selectors: sel, AllocationMode: resourceapi.DeviceAllocationModeExactCount, Count: 1,
			}}},
		}}},
	}
	if _, err := c.ResourceV1().ResourceClaimTemplates(namespace).Create(ctx, tmpl, metav1.CreateOptions{}); err != nil {
		return err
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: corev1.PodSpec{
			ResourceClaims: []corev1.PodResourceClaim{{Name: "gpus", ResourceClaimTemplateName: ptr.To(name)}},
			Tolerations:    []corev1.Toleration{{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(int64(1000)),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name: "main", Image: "example.com/pytorch:dra",
				Resources: corev1.ResourceRequirements{Claims: []corev1.ResourceClaim{{Name: "gpus"}}},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
	_, err := c.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{})
	return err
}

// allocated waits until the pod is bound and returns its node and the device allocated to
// its claim.
func allocated(ctx context.Context, c kubernetes.Interface, name string) (node, device string, err error) {
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		pod, err := c.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil || pod.Spec.NodeName == "" || len(pod.Status.ResourceClaimStatuses) == 0 || pod.Status.ResourceClaimStatuses[0].ResourceClaimName == nil {
			return false, nil
		}
		claim, err := c.ResourceV1().ResourceClaims(namespace).Get(ctx, *pod.Status.ResourceClaimStatuses[0].ResourceClaimName, metav1.GetOptions{})
		if err != nil || claim.Status.Allocation == nil || len(claim.Status.Allocation.Devices.Results) != 1 {
			return false, nil
		}
		r := claim.Status.Allocation.Devices.Results[0]
		if r.Pool != pod.Spec.NodeName {
			return false, fmt.Errorf("device %s of pool %s allocated, pod bound to %s", r.Device, r.Pool, pod.Spec.NodeName)
		}
		node, device = pod.Spec.NodeName, r.Device
		return true, nil
	})
	if err != nil {
		return "", "", fmt.Errorf("not bound with an allocation within %s: %w%s", timeout, err, schedulingEvents(ctx, c, name))
	}
	return node, device, nil
}

// staysUnscheduled: the scheduler reports the pod unschedulable and allocates nothing.
func staysUnscheduled(ctx context.Context, c kubernetes.Interface, name string) error {
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		pod, err := c.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		if pod.Spec.NodeName != "" {
			return false, fmt.Errorf("bound to %s", pod.Spec.NodeName)
		}
		for _, cond := range pod.Status.Conditions {
			if cond.Type == corev1.PodScheduled && cond.Reason == corev1.PodReasonUnschedulable {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("not reported unschedulable within %s: %w", timeout, err)
	}
	claims, err := c.ResourceV1().ResourceClaims(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, cl := range claims.Items {
		if strings.HasPrefix(cl.Name, name+"-") && cl.Status.Allocation != nil {
			return fmt.Errorf("claim %s was allocated", cl.Name)
		}
	}
	return nil
}

func findDevice(rslices []resourceapi.ResourceSlice, node, device string) (compat.DeviceFacts, bool) {
	for _, s := range rslices {
		if s.Spec.NodeName == nil || *s.Spec.NodeName != node {
			continue
		}
		for _, d := range s.Spec.Devices {
			if d.Name == device {
				return compat.ReadDevice(s.Spec.Driver, d.Attributes), true
			}
		}
	}
	return compat.DeviceFacts{}, false
}

func schedulingEvents(ctx context.Context, c kubernetes.Interface, name string) string {
	evs, err := c.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		return ""
	}
	var out []string
	for _, e := range evs.Items {
		out = append(out, e.Reason+": "+e.Message)
	}
	return "; events: " + strings.Join(out, " | ")
}

// cleanup deletes what setup and the cases created.
func cleanup(c kubernetes.Interface) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = c.CoreV1().Namespaces().Delete(ctx, namespace, metav1.DeleteOptions{})
	_ = c.ResourceV1().DeviceClasses().Delete(ctx, class, metav1.DeleteOptions{})
	slices, err := c.ResourceV1().ResourceSlices().List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for _, s := range slices.Items {
		if s.Spec.Driver == compat.DRADriverName {
			_ = c.ResourceV1().ResourceSlices().Delete(ctx, s.Name, metav1.DeleteOptions{})
		}
	}
}
