package workload

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
)

// PreflightContainerName is the init container that checks the pod's GPUs and the image's
// torch (cmd/preflight) before the user's container starts; without GPUs, torch alone. The
// controller reads its termination message.
const PreflightContainerName = "trainenv-preflight"

// preflightContainer runs the preflight in the user's pinned image, so that it checks the
// image's own Python and torch against the GPUs the pod was given. It requests the main
// container's resources: the kubelet's device manager hands an init container's GPUs on to
// the app containers, so the preflight sees exactly the GPUs the environment will use, and
// the pod's effective request is unchanged.
func preflightContainer(te *trainenvv1.TrainingEnvironment, in Inputs) corev1.Container {
	gpus := int32(0)
	if te.Spec.GPU != nil {
		gpus = te.Spec.GPU.Count
	}
	args := []string{fmt.Sprintf("--gpus=%d", gpus)}
	for _, r := range in.CUDARequirements {
		args = append(args, "--require="+r)
	}
	return corev1.Container{
		Name:            PreflightContainerName,
		Image:           in.PinnedImage,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         []string{PreflightPath},
		Args:            args,
		Env:             runtimeEnv(te),
		Resources:       resources(te),
		// As the user's container: torch in the image runs as it will there.
		SecurityContext: userContainerSecurity(),
		VolumeMounts:    []corev1.VolumeMount{{Name: ToolsVolume, MountPath: ToolsMountPath, ReadOnly: true}},
		// The preflight writes its JSON report to the termination message. Should it not
		// run at all (e.g. an image without glibc), the end of its log, such as the
		// loader's error, becomes the message instead of nothing.
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
}

// runtimeEnv is what the NVIDIA container runtime must see on every container that gets
// the environment's GPUs.
func runtimeEnv(te *trainenvv1.TrainingEnvironment) []corev1.EnvVar {
	if te.Spec.CUDA != nil && te.Spec.CUDA.MinorVersionCompatibility {
		// The node may support an older CUDA of the same major than the image declares; the
		// operator checked the minor-version driver minimum, so the runtime must not refuse.
		return []corev1.EnvVar{{Name: "NVIDIA_DISABLE_REQUIRE", Value: "true"}}
	}
	return nil
}
