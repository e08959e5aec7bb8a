package workload_test

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/utils/ptr"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/access"
	"github.com/trainenv/trainenv/internal/workload"
)

func withJupyterAndSSH(te *trainenvv1.TrainingEnvironment) {
	te.Spec.Jupyter = &trainenvv1.JupyterSpec{Enabled: true, WebsocketPingIntervalSeconds: 20}
	te.Spec.SSH = &trainenvv1.SSHSpec{
		Enabled:                    true,
		AuthorizedKeysSecretRef:    &trainenvv1.SecretKeyReference{Name: "alice-keys"},
		ClientAliveIntervalSeconds: 15, ClientAliveCountMax: 4, TCPKeepAlive: ptr.To(false),
	}
}

func env(c corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

func TestJupyterAndSSHRunTheEntrypointWithSecretsMounted(t *testing.T) {
	g := NewWithT(t)
	sts := workload.StatefulSet(environment(withJupyterAndSSH), workload.Inputs{PinnedImage: pinned, ToolsImage: tools})
	pod := sts.Spec.Template.Spec
	c := pod.Containers[0]

	g.Expect(c.Command).To(Equal([]string{workload.EntrypointPath}))
	cfg, err := access.Decode(env(c, access.ConfigEnv).Value)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cfg).To(Equal(access.Config{
		SSH:     &access.SSHConfig{ClientAliveIntervalSeconds: 15, ClientAliveCountMax: 4, TCPKeepAlive: false},
		Jupyter: &access.JupyterConfig{WebsocketPingIntervalSeconds: 20},
	}))
	g.Expect(env(c, access.JupyterTokenEnv).ValueFrom.SecretKeyRef).To(Equal(&corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "alice-jupyter"}, Key: "token"}))
	g.Expect(env(c, access.JupyterTokenEnv).Value).To(BeEmpty(), "the token never appears in the pod spec")
	g.Expect(env(c, "HOME").Value).To(Equal("/workspace"))
	g.Expect(*c.SecurityContext.ReadOnlyRootFilesystem).To(BeTrue())
	g.Expect(c.Ports).To(ConsistOf(
		corev1.ContainerPort{Name: "ssh", ContainerPort: 2222, Protocol: corev1.ProtocolTCP},
		corev1.ContainerPort{Name: "jupyter", ContainerPort: 8888, Protocol: corev1.ProtocolTCP}))

	g.Expect(pod.Volumes).To(ContainElement(corev1.Volume{Name: "ssh-host-keys", VolumeSource: corev1.VolumeSource{
		Secret: &corev1.SecretVolumeSource{SecretName: "alice-ssh-host-keys", DefaultMode: ptr.To[int32](0o400)}}}))
	g.Expect(pod.Volumes).To(ContainElement(corev1.Volume{Name: "ssh-authorized-keys", VolumeSource: corev1.VolumeSource{
		Secret: &corev1.SecretVolumeSource{SecretName: "alice-keys", DefaultMode: ptr.To[int32](0o400),
			Items: []corev1.KeyToPath{{Key: "authorized_keys", Path: "authorized_keys"}}}}}))
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		g.Expect(mounts).NotTo(HaveKey(m.MountPath), "one mount per path")
		mounts[m.MountPath] = m.Name
	}
	g.Expect(mounts).To(Equal(map[string]string{
		"/dev/shm": "dshm", "/workspace": "workspace", "/tmp": "tmp",
		workload.ToolsMountPath: workload.ToolsVolume, access.RuntimeDir: "trainenv-run",
		access.HostKeysDir: "ssh-host-keys", access.AuthorizedKeysDir: "ssh-authorized-keys",
	}))
	// Nested mounts come after the tools volume they are nested in.
	g.Expect(c.VolumeMounts[2].MountPath).To(Equal(workload.ToolsMountPath))
	g.Expect(sts.Spec.Template.Annotations).To(BeEmpty(), "nothing of the authorized_keys in the template: a new key must not restart the pod")
}

func TestHomeIsAnEmptyDirWithoutWorkspaceAndUserTokenIsReferenced(t *testing.T) {
	g := NewWithT(t)
	te := environment(withJupyterAndSSH, func(te *trainenvv1.TrainingEnvironment) {
		te.Spec.Workspace, te.Spec.SSH = nil, nil
		te.Spec.Jupyter.TokenSecretRef = &trainenvv1.SecretKeyReference{Name: "my-token"}
	})
	c := workload.StatefulSet(te, workload.Inputs{PinnedImage: pinned, ToolsImage: tools}).Spec.Template.Spec.Containers[0]
	g.Expect(env(c, "HOME").Value).To(Equal("/home/trainenv"))
	g.Expect(c.VolumeMounts).To(ContainElement(corev1.VolumeMount{Name: "home", MountPath: "/home/trainenv"}))
	g.Expect(env(c, access.JupyterTokenEnv).ValueFrom.SecretKeyRef.Name).To(Equal("my-token"))
	g.Expect(env(c, access.JupyterTokenEnv).ValueFrom.SecretKeyRef.Key).To(Equal("token"))
	cfg, err := access.Decode(env(c, access.ConfigEnv).Value)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cfg.SSH).To(BeNil())
	g.Expect(c.Ports).To(HaveLen(1))
}

func TestNoAccessKeepsTheImageCommand(t *testing.T) {
	g := NewWithT(t)
	c := workload.StatefulSet(environment(), workload.Inputs{PinnedImage: pinned, ToolsImage: tools}).Spec.Template.Spec.Containers[0]
	g.Expect(c.Command).To(BeNil())
	g.Expect(env(c, access.ConfigEnv)).To(BeNil())
}

// Idle suspension is opt-in: the entrypoint is told the setting in seconds; without it, it
// never stops the environment. An idle-suspended environment scales to zero with the
// spec untouched.
func TestIdleSuspendReachesTheEntrypointAndScalesToZero(t *testing.T) {
	g := NewWithT(t)
	config := func(te *trainenvv1.TrainingEnvironment) access.Config {
		c := workload.StatefulSet(te, workload.Inputs{PinnedImage: pinned, ToolsImage: tools}).Spec.Template.Spec.Containers[0]
		cfg, err := access.Decode(env(c, access.ConfigEnv).Value)
		g.Expect(err).NotTo(HaveOccurred())
		return cfg
	}
	g.Expect(config(environment(withJupyterAndSSH)).IdleSuspendAfterSeconds).To(BeZero())
	te := environment(withJupyterAndSSH, func(te *trainenvv1.TrainingEnvironment) {
		te.Spec.IdleSuspend = &trainenvv1.IdleSuspendSpec{AfterMinutes: 90}
	})
	g.Expect(config(te).IdleSuspendAfterSeconds).To(BeEquivalentTo(90 * 60))
	g.Expect(config(te).GPUActivityCommand).To(Equal([]string{workload.PreflightPath, "gpu-activity"}),
		"the entrypoint reads the pod's GPUs through the preflight, which links NVML")
	cpuOnly := te.DeepCopy()
	cpuOnly.Spec.GPU = nil
	g.Expect(config(cpuOnly).GPUActivityCommand).To(BeEmpty(), "no GPUs to watch")

	running := workload.StatefulSet(te, workload.Inputs{PinnedImage: pinned, ToolsImage: tools})
	suspended := workload.StatefulSet(te, workload.Inputs{PinnedImage: pinned, ToolsImage: tools, IdleSuspended: true})
	g.Expect(*running.Spec.Replicas).To(BeEquivalentTo(1))
	g.Expect(*suspended.Spec.Replicas).To(BeEquivalentTo(0))
	g.Expect(suspended.Spec.Template).To(Equal(running.Spec.Template), "resuming starts the same pod")
	g.Expect(te.Spec.Suspend).To(BeFalse())
}

func TestNetworkPolicyDeniesAllIngressToThePod(t *testing.T) {
	g := NewWithT(t)
	np := workload.NetworkPolicy(environment())
	g.Expect(np.Name).To(Equal("alice"))
	g.Expect(np.Spec.PodSelector.MatchLabels).To(Equal(map[string]string{workload.LabelEnvironment: "alice"}))
	g.Expect(np.Spec.PolicyTypes).To(Equal([]networkingv1.PolicyType{networkingv1.PolicyTypeIngress}))
	g.Expect(np.Spec.Ingress).To(BeEmpty(), "no rule: nothing may connect")
}
