// Package access renders how users reach an environment: the sshd and Jupyter server
// configurations that the in-pod entrypoint writes and runs, and the names both sides
// (the operator that renders the pod, the entrypoint inside it) agree on.
package access

import (
	"encoding/json"
	"fmt"
)

// Ports inside the pod. Both servers listen on 127.0.0.1 only: `kubectl port-forward`
// reaches the pod's loopback, other pods do not.
const (
	SSHPort     = 2222
	JupyterPort = 8888
)

// Paths inside the user's container, where the operator mounts what the entrypoint reads.
const (
	// ConfigEnv carries the JSON of Config to the entrypoint.
	ConfigEnv = "TRAINENV_ACCESS_CONFIG"
	// JupyterTokenEnv carries the Jupyter token (from a Secret, never the command line);
	// jupyter_server reads this variable itself.
	JupyterTokenEnv = "JUPYTER_TOKEN"
	// HostKeysDir holds the SSH host keys from the environment's host-key Secret (keys
	// HostKeyFiles). The entrypoint copies them to a private directory (0600): Secret
	// volumes are group-readable under fsGroup and sshd refuses such keys.
	HostKeysDir = "/trainenv/secrets/ssh-host-keys"
	// AuthorizedKeysDir holds the user's authorized_keys Secret key as AuthorizedKeysFile.
	AuthorizedKeysDir = "/trainenv/secrets/ssh-authorized-keys"
	// AuthorizedKeysFile is the file name under AuthorizedKeysDir.
	AuthorizedKeysFile = "authorized_keys"
	// RuntimeDir is the writable directory (an emptyDir) where the entrypoint writes the
	// generated configs, the copied keys and the servers' runtime files.
	RuntimeDir = "/trainenv/run"
)

// TokenKey is the key of the Jupyter token in its Secret (and the default of
// spec.jupyter.tokenSecretRef.key).
const TokenKey = "token"

// HostKeyFiles are the keys of the host-key Secret, one private key per algorithm, in
// OpenSSH format; the Secret also holds each public key under the same name + ".pub".
var HostKeyFiles = []string{"ssh_host_ed25519_key", "ssh_host_ecdsa_key", "ssh_host_rsa_key"}

// Config is what the operator tells the entrypoint, from the environment's spec.
type Config struct {
	// SSH runs sshd when set.
	SSH *SSHConfig `json:"ssh,omitempty"`
	// Jupyter runs the Jupyter server when set.
	Jupyter *JupyterConfig `json:"jupyter,omitempty"`
	// IdleSuspendAfterSeconds, when > 0, makes the entrypoint exit with the termination
	// message IdleMessagePrefix… after that long with no SSH session, no terminal, no busy
	// kernel, no busy process and no GPU utilisation; the operator then suspends the
	// environment. 0: never.
	IdleSuspendAfterSeconds int64 `json:"idleSuspendAfterSeconds,omitempty"`
	// GPUActivityCommand reads the utilisation of the pod's GPUs for idle detection (the
	// preflight binary with gpufacts.ActivityCommand); empty without GPUs.
	GPUActivityCommand []string `json:"gpuActivityCommand,omitempty"`
	// Command is the image's own command, run when neither server is (kept for logs).
	Command []string `json:"command,omitempty"`
}

// IdleMessagePrefix starts the termination message of an entrypoint that stopped because
// the environment was idle.
const IdleMessagePrefix = "trainenv: idle"

// SSHConfig is the keep-alive policy of sshd.
type SSHConfig struct {
	ClientAliveIntervalSeconds int32 `json:"clientAliveIntervalSeconds"`
	ClientAliveCountMax        int32 `json:"clientAliveCountMax"`
	TCPKeepAlive               bool  `json:"tcpKeepAlive"`
}

// JupyterConfig is the Jupyter server's connection and culling policy.
type JupyterConfig struct {
	WebsocketPingIntervalSeconds int32 `json:"websocketPingIntervalSeconds"`
	// CullIdleKernelsAfterSeconds: 0 never culls.
	CullIdleKernelsAfterSeconds int32 `json:"cullIdleKernelsAfterSeconds,omitempty"`
}

// Encode returns the value of ConfigEnv.
func (c Config) Encode() string {
	data, err := json.Marshal(c)
	if err != nil {
		panic(err) // plain structs: cannot fail
	}
	return string(data)
}

// Decode reads the value of ConfigEnv.
func Decode(s string) (Config, error) {
	var c Config
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return Config{}, fmt.Errorf("%s is not valid: %w", ConfigEnv, err)
	}
	return c, nil
}
