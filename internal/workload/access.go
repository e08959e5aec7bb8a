package workload

import (
	"cmp"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/access"
	"github.com/trainenv/trainenv/internal/gpufacts"
)

// How the pod is wired for Jupyter and SSH. The in-pod entrypoint (copied in by the tools
// init container, see tools.go) runs as the container's command, reads access.Config from
// the environment, the Jupyter token from JUPYTER_TOKEN and the SSH keys from the Secret
// volumes below, writes the server configs into access.RuntimeDir and supervises sshd and
// Jupyter, both on 127.0.0.1 (port-forward reaches the pod's loopback; other pods do not).

const (
	// DefaultAuthorizedKeysKey is the default key of spec.ssh.authorizedKeysSecretRef.
	DefaultAuthorizedKeysKey = "authorized_keys"

	hostKeysVolume       = "ssh-host-keys"
	authorizedKeysVolume = "ssh-authorized-keys"
	runtimeVolume        = "trainenv-run"
	homeVolume           = "home"
	tmpVolume            = "tmp"
	// homeDir is HOME when the environment has no workspace (an emptyDir).
	homeDir = "/home/trainenv"
)

// JupyterEnabled says whether the environment runs the Jupyter server.
func JupyterEnabled(te *trainenvv1.TrainingEnvironment) bool {
	return te.Spec.Jupyter != nil && te.Spec.Jupyter.Enabled
}

// SSHEnabled says whether the environment runs sshd.
func SSHEnabled(te *trainenvv1.TrainingEnvironment) bool {
	return te.Spec.SSH != nil && te.Spec.SSH.Enabled
}

// JupyterTokenSecretName is the Secret the operator generates for the Jupyter token when
// spec.jupyter.tokenSecretRef is not set.
func JupyterTokenSecretName(te *trainenvv1.TrainingEnvironment) string { return te.Name + "-jupyter" }

// HostKeySecretName is the Secret holding the environment's SSH host keys.
func HostKeySecretName(te *trainenvv1.TrainingEnvironment) string { return te.Name + "-ssh-host-keys" }

// HostKeyAlias is the name the environment's host keys are known by in known_hosts.
func HostKeyAlias(te *trainenvv1.TrainingEnvironment) string {
	return "trainenv." + te.Namespace + "." + te.Name
}

// JupyterTokenRef is the Secret key holding the Jupyter token: the user's, or the one
// the operator generates.
func JupyterTokenRef(te *trainenvv1.TrainingEnvironment) trainenvv1.SecretKeyReference {
	if ref := te.Spec.Jupyter.TokenSecretRef; ref != nil {
		return trainenvv1.SecretKeyReference{Name: ref.Name, Key: cmp.Or(ref.Key, access.TokenKey)}
	}
	return trainenvv1.SecretKeyReference{Name: JupyterTokenSecretName(te), Key: access.TokenKey}
}

// AuthorizedKeysRef is the user's Secret key holding authorized_keys (SSH enabled only).
func AuthorizedKeysRef(te *trainenvv1.TrainingEnvironment) trainenvv1.SecretKeyReference {
	ref := te.Spec.SSH.AuthorizedKeysSecretRef
	if ref == nil { // the CRD forbids it; a zero name makes the pod wait, never run open
		return trainenvv1.SecretKeyReference{Key: DefaultAuthorizedKeysKey}
	}
	return trainenvv1.SecretKeyReference{Name: ref.Name, Key: cmp.Or(ref.Key, DefaultAuthorizedKeysKey)}
}

// AccessConfig is what the entrypoint is told, from the spec (CRD defaults repeated here
// for objects that never went through the API server).
func AccessConfig(te *trainenvv1.TrainingEnvironment) access.Config {
	var c access.Config
	if SSHEnabled(te) {
		s := te.Spec.SSH
		c.SSH = &access.SSHConfig{
			ClientAliveIntervalSeconds: cmp.Or(s.ClientAliveIntervalSeconds, 30),
			ClientAliveCountMax:        cmp.Or(s.ClientAliveCountMax, 10),
			TCPKeepAlive:               s.TCPKeepAlive == nil || *s.TCPKeepAlive,
		}
	}
	if JupyterEnabled(te) {
		j := te.Spec.Jupyter
		c.Jupyter = &access.JupyterConfig{
			WebsocketPingIntervalSeconds: cmp.Or(j.WebsocketPingIntervalSeconds, 30),
			CullIdleKernelsAfterSeconds:  ptr.Deref(j.CullIdleKernelsAfterSeconds, 0),
		}
	}
	if is := te.Spec.IdleSuspend; is != nil && is.AfterMinutes > 0 {
		c.IdleSuspendAfterSeconds = int64(is.AfterMinutes) * 60
		if gpu := te.Spec.GPU; gpu != nil && gpu.Count > 0 {
			// The preflight (copied with the tools) links NVML; the entrypoint cannot.
			c.GPUActivityCommand = []string{PreflightPath, gpufacts.ActivityCommand}
		}
	}
	return c
}

// withAccess makes the pod's main container run the entrypoint with Jupyter and/or SSH.
// The root file system becomes read-only: the servers write only to the runtime emptyDir,
// HOME (the workspace, else an emptyDir) and /tmp.
func withAccess(spec *corev1.PodSpec, te *trainenvv1.TrainingEnvironment) {
	if !JupyterEnabled(te) && !SSHEnabled(te) {
		return
	}
	c := &spec.Containers[0]
	c.Command = []string{EntrypointPath}
	c.Args = nil
	c.SecurityContext.ReadOnlyRootFilesystem = ptr.To(true)
	c.Env = append(c.Env, corev1.EnvVar{Name: access.ConfigEnv, Value: AccessConfig(te).Encode()})

	home := homeDir
	if ws := te.Spec.Workspace; ws != nil {
		home = ws.MountPath
	} else {
		spec.Volumes = append(spec.Volumes, emptyDir(homeVolume, nil))
		addMount(c, corev1.VolumeMount{Name: homeVolume, MountPath: homeDir})
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: "HOME", Value: home})
	spec.Volumes = append(spec.Volumes, emptyDir(tmpVolume, nil), emptyDir(runtimeVolume, ptr.To(resource.MustParse("64Mi"))))
	// The tools volume first: the mounts below are nested in it.
	addMount(c, toolsMount())
	addMount(c, corev1.VolumeMount{Name: runtimeVolume, MountPath: access.RuntimeDir})
	addMount(c, corev1.VolumeMount{Name: tmpVolume, MountPath: "/tmp"})

	if JupyterEnabled(te) {
		ref := JupyterTokenRef(te)
		c.Env = append(c.Env, corev1.EnvVar{Name: access.JupyterTokenEnv, ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: ref.Name}, Key: ref.Key},
		}})
		c.Ports = append(c.Ports, corev1.ContainerPort{Name: "jupyter", ContainerPort: access.JupyterPort, Protocol: corev1.ProtocolTCP})
	}
	if SSHEnabled(te) {
		withSSH(spec, c, te)
	}
}

func withSSH(spec *corev1.PodSpec, c *corev1.Container, te *trainenvv1.TrainingEnvironment) {
	ref := AuthorizedKeysRef(te)
	spec.Volumes = append(spec.Volumes,
		corev1.Volume{Name: hostKeysVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: HostKeySecretName(te), DefaultMode: ptr.To[int32](0o400),
		}}},
		corev1.Volume{Name: authorizedKeysVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName:  ref.Name,
			Items:       []corev1.KeyToPath{{Key: ref.Key, Path: access.AuthorizedKeysFile}},
			DefaultMode: ptr.To[int32](0o400),
		}}},
	)
	addMount(c, corev1.VolumeMount{Name: hostKeysVolume, MountPath: access.HostKeysDir, ReadOnly: true})
	addMount(c, corev1.VolumeMount{Name: authorizedKeysVolume, MountPath: access.AuthorizedKeysDir, ReadOnly: true})
	c.Ports = append(c.Ports, corev1.ContainerPort{Name: "ssh", ContainerPort: access.SSHPort, Protocol: corev1.ProtocolTCP})
}

// addMount adds m unless the container already mounts something at its path (the tools
// volume may be mounted by another feature too).
func addMount(c *corev1.Container, m corev1.VolumeMount) {
	if slices.ContainsFunc(c.VolumeMounts, func(have corev1.VolumeMount) bool { return have.MountPath == m.MountPath }) {
		return
	}
	c.VolumeMounts = append(c.VolumeMounts, m)
}

func emptyDir(name string, limit *resource.Quantity) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: limit}}}
}
