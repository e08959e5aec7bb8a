package workload

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
)

// Inputs are what the reconciler learned before rendering the workload.
type Inputs struct {
	// PinnedImage is the verified image, repository@sha256:...
	PinnedImage string
	// Affinity (ORed node selector terms, from the compatibility checks) admits exactly
	// the nodes where the image's CUDA requirement holds; the scheduler picks among them.
	Affinity []corev1.NodeSelectorTerm
	// ToolsImage is the operator's own image (by digest in production), which carries the
	// in-pod entrypoint and preflight; an init container copies them into the pod.
	ToolsImage string
	// IdleSuspended: the environment was found idle (spec.idleSuspend) and not resumed
	// since; it is scaled to zero as if spec.suspend were true, without touching the spec.
	IdleSuspended bool
	// CUDARequirements are the CUDA requirements the affinity was computed from (already
	// relaxed for minor-version compatibility); the preflight checks them again on the node.
	CUDARequirements []string
	// ClaimTemplate names the ResourceClaimTemplate of the GPU claim (ResourceClaimTemplate)
	// when the environment asks for GPUs through Dynamic Resource Allocation.
	ClaimTemplate string
}

// StatefulSet renders the environment's workload running in.PinnedImage.
//
// A StatefulSet of one replica rather than a bare Pod: its controller recreates the pod
// after an eviction or node loss, and it never runs two pods at once (a Deployment's
// rolling update would surge a second pod onto the ReadWriteOnce workspace and hold a
// second set of GPUs). Suspend (asked, or for idleness) is replicas: 0.
//
// The authorized_keys Secret is not part of the template: the entrypoint follows changes
// to it in the running pod, so a new key does not restart the pod (and kill training).
func StatefulSet(te *trainenvv1.TrainingEnvironment, in Inputs) *appsv1.StatefulSet {
	labels := Labels(te)
	replicas := int32(1)
	if te.Spec.Suspend || in.IdleSuspended {
		replicas = 0
	}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: StatefulSetName(te), Namespace: te.Namespace, Labels: labels},
		Spec: appsv1.StatefulSetSpec{
			Replicas: &replicas,
			// No serviceName, so no headless Service: users reach the pod through
			// port-forward, and its NetworkPolicy admits no other traffic, so a DNS name
			// would serve nothing. It cost the cluster three writes per environment (the
			// Service, its EndpointSlice and an update of it; docs/benchmarks.md).
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelEnvironment: te.Name}},
			// Parallel: the single pod is replaced without waiting on ordinals.
			PodManagementPolicy: appsv1.ParallelPodManagement,
			UpdateStrategy:      appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       podSpec(te, in),
			},
		},
	}
}

func podSpec(te *trainenvv1.TrainingEnvironment, in Inputs) corev1.PodSpec {
	spec := corev1.PodSpec{
		// The environment talks to no API server: no token in the pod.
		AutomountServiceAccountToken: ptr.To(false),
		EnableServiceLinks:           ptr.To(false),
		ImagePullSecrets:             te.Spec.ImagePullSecrets,
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr.To(true),
			RunAsUser:      ptr.To(UserID),
			RunAsGroup:     ptr.To(UserID),
			FSGroup:        ptr.To(UserID),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{container(te, in.PinnedImage)},
		Volumes:    volumes(te),
	}
	if needsTools(te) {
		// The preflight runs wherever the tools are: it checks the GPUs, or, without GPUs,
		// that the image's torch imports.
		spec.InitContainers = append(spec.InitContainers, toolsInitContainer(in.ToolsImage), preflightContainer(te, in))
		spec.Volumes = append(spec.Volumes, toolsVolume())
	}
	withAccess(&spec, te)
	if gpu := te.Spec.GPU; gpu != nil && gpu.Count > 0 {
		spec.Tolerations = gpuTolerations(gpu)
	}
	if UsesDRA(te) {
		withGPUClaim(&spec, in.ClaimTemplate)
	}
	if len(in.Affinity) > 0 {
		spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: in.Affinity},
		}}
	}
	return spec
}

// GPUTaintKey is the taint key of GPU node pools: GKE, EKS and AKS taint GPU node pools
// nvidia.com/gpu (NoSchedule), and NVIDIA's GPU Operator documentation does the same, so that
// only pods that use the GPUs land on those expensive nodes.
const GPUTaintKey = "nvidia.com/gpu"

// gpuTolerations lets a GPU environment's pod onto tainted GPU nodes. The operator sets it
// itself rather than relying on the ExtendedResourceToleration admission plugin: that plugin
// is not enabled in every cluster, and it only looks at extended resources, so a pod whose
// GPUs come from a Dynamic Resource Allocation claim would get no toleration from it. A GPU
// resource other than nvidia.com/gpu (spec.gpu.resourceName) is tolerated under its own key
// too, the convention for other vendors' pools.
func gpuTolerations(gpu *trainenvv1.GPUSpec) []corev1.Toleration {
	keys := []string{GPUTaintKey}
	if gpu.ResourceName != "" && gpu.ResourceName != GPUTaintKey {
		keys = append(keys, gpu.ResourceName)
	}
	tolerations := make([]corev1.Toleration, 0, len(keys))
	for _, k := range keys {
		tolerations = append(tolerations, corev1.Toleration{Key: k, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule})
	}
	return tolerations
}

func container(te *trainenvv1.TrainingEnvironment, pinnedImage string) corev1.Container {
	c := corev1.Container{
		Name:  ContainerName,
		Image: pinnedImage,
		// The image is pinned by digest, so IfNotPresent can never run other content.
		ImagePullPolicy: corev1.PullIfNotPresent,
		Resources:       resources(te),
		SecurityContext: userContainerSecurity(),
		VolumeMounts:    []corev1.VolumeMount{{Name: shmVolume, MountPath: "/dev/shm"}},
	}
	c.Env = append(c.Env, runtimeEnv(te)...)
	if ws := te.Spec.Workspace; ws != nil {
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: workspaceVolume, MountPath: ws.MountPath})
		c.WorkingDir = ws.MountPath
	}
	return c
}

// userContainerSecurity is Pod Security "restricted" for containers running the user's
// image, whose root file system stays writable (pip installs, caches).
func userContainerSecurity() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		RunAsNonRoot:             ptr.To(true),
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

func resources(te *trainenvv1.TrainingEnvironment) corev1.ResourceRequirements {
	req := corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}
	if r := te.Spec.Resources; r != nil {
		if r.CPU != nil {
			req.Requests[corev1.ResourceCPU] = *r.CPU
		}
		if r.Memory != nil {
			req.Requests[corev1.ResourceMemory] = *r.Memory
			req.Limits[corev1.ResourceMemory] = *r.Memory
		}
	}
	if UsesDRA(te) {
		// The devices come with the pod's claim; each container that needs them names it.
		req.Claims = []corev1.ResourceClaim{{Name: GPUClaimName}}
	} else if gpu := te.Spec.GPU; gpu != nil && gpu.Count > 0 {
		// Extended resources cannot be overcommitted: request and limit must be equal.
		n := *resource.NewQuantity(int64(gpu.Count), resource.DecimalSI)
		req.Requests[corev1.ResourceName(gpu.ResourceName)] = n
		req.Limits[corev1.ResourceName(gpu.ResourceName)] = n
	}
	if len(req.Requests) == 0 {
		req.Requests = nil
	}
	if len(req.Limits) == 0 {
		req.Limits = nil
	}
	return req
}

func volumes(te *trainenvv1.TrainingEnvironment) []corev1.Volume {
	vols := []corev1.Volume{{
		Name: shmVolume,
		VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
			Medium:    corev1.StorageMediumMemory,
			SizeLimit: te.Spec.ShmSize,
		}},
	}}
	if te.Spec.Workspace != nil {
		vols = append(vols, corev1.Volume{
			Name: workspaceVolume,
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
				ClaimName: WorkspaceClaimName(te),
			}},
		})
	}
	return vols
}
