package workload

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
)

// The operator's image carries two small programs that run inside the environment's pod:
// the entrypoint (PID 1 of the user's container: writes the sshd and Jupyter configs, runs
// and supervises them) and the preflight (checks the GPUs before anything starts). An init
// container copies them from the operator's image into an emptyDir shared with the user's
// containers, as Tekton and Argo do with their entrypoints, so that user images need no
// trainenv software of their own.
const (
	// ToolsInitContainerName copies the tools into ToolsBinDir.
	ToolsInitContainerName = "trainenv-tools"
	// ToolsVolume is the emptyDir holding the copied tools, mounted at ToolsMountPath.
	ToolsVolume = "trainenv-tools"
	// ToolsMountPath is where every trainenv container sees the tools volume.
	ToolsMountPath = "/trainenv"
	// ToolsBinDir holds the copied binaries.
	ToolsBinDir = ToolsMountPath + "/bin"
	// EntrypointPath is the entrypoint as the user's container runs it.
	EntrypointPath = ToolsBinDir + "/entrypoint"
	// PreflightPath is the preflight as the preflight init container runs it.
	PreflightPath = ToolsBinDir + "/preflight"
	// ToolsImageInstaller is the program in the operator's image that copies the tools:
	// `trainenv-entrypoint install DIR` copies itself and the preflight into DIR.
	ToolsImageInstaller = "/usr/local/bin/trainenv-entrypoint"
)

// needsTools says whether the pod runs any trainenv program: the entrypoint (Jupyter or
// SSH) or the preflight (GPUs).
func needsTools(te *trainenvv1.TrainingEnvironment) bool {
	jupyter := te.Spec.Jupyter != nil && te.Spec.Jupyter.Enabled
	ssh := te.Spec.SSH != nil && te.Spec.SSH.Enabled
	gpus := te.Spec.GPU != nil && te.Spec.GPU.Count > 0
	return jupyter || ssh || gpus
}

// toolsInitContainer copies the tools out of the operator's image. It runs first, as the
// same non-root user, with nothing but the tools volume.
func toolsInitContainer(toolsImage string) corev1.Container {
	return corev1.Container{
		Name:            ToolsInitContainerName,
		Image:           toolsImage,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         []string{ToolsImageInstaller, "install", ToolsBinDir},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
		},
		SecurityContext:          restrictedContainerSecurity(),
		VolumeMounts:             []corev1.VolumeMount{toolsMount()},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
}

func toolsMount() corev1.VolumeMount {
	return corev1.VolumeMount{Name: ToolsVolume, MountPath: ToolsMountPath}
}

func toolsVolume() corev1.Volume {
	return corev1.Volume{Name: ToolsVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
		SizeLimit: ptr.To(resource.MustParse("128Mi")),
	}}}
}

// restrictedContainerSecurity is the container security context of Pod Security
// "restricted", with a read-only root file system (trainenv's own containers write only to
// their volumes).
func restrictedContainerSecurity() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		RunAsNonRoot:             ptr.To(true),
		ReadOnlyRootFilesystem:   ptr.To(true),
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}
