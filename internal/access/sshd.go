package access

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// Algorithms sshd offers: the modern subset of OpenSSH 9.x's defaults that `ssh-audit`
// finds no fault with. Left out on purpose: NIST-curve key exchange and host keys
// (ecdh-sha2-nistp*, ecdsa-sha2-nistp*), SHA-1 anything, diffie-hellman-group14 and
// group exchange (moduli the image chooses), CBC ciphers, and MACs in encrypt-and-MAC
// mode or with 64-bit tags (hmac-sha2-*, umac-64). Kept on purpose: the post-quantum
// sntrup761x25519 exchange, which Debian 12's ssh-audit 2.5.0 still calls experimental
// (later ssh-audit versions instead warn when a server lacks post-quantum exchange).
var (
	SSHKexAlgorithms = []string{
		"sntrup761x25519-sha512@openssh.com", // post-quantum hybrid, OpenSSH ≥ 9.0's default
		"curve25519-sha256",
		"curve25519-sha256@libssh.org",
		"diffie-hellman-group18-sha512",
		"diffie-hellman-group16-sha512",
	}
	SSHCiphers = []string{
		"chacha20-poly1305@openssh.com",
		"aes256-gcm@openssh.com",
		"aes128-gcm@openssh.com",
		"aes256-ctr",
		"aes192-ctr",
		"aes128-ctr",
	}
	SSHMACs = []string{
		"hmac-sha2-256-etm@openssh.com",
		"hmac-sha2-512-etm@openssh.com",
		"umac-128-etm@openssh.com",
	}
	// SSHHostKeyAlgorithms are the host-key signatures offered, which is also why
	// ServedHostKeyFiles leaves out the ECDSA key.
	SSHHostKeyAlgorithms = []string{
		"ssh-ed25519",
		"rsa-sha2-512",
		"rsa-sha2-256",
	}
)

// ServedHostKeyFiles are the host keys sshd loads: the ed25519 and RSA keys of
// HostKeyFiles. The ECDSA (NIST P-256) key stays in the Secret for clients that know
// nothing else, but serving it would be an ssh-audit failure.
var ServedHostKeyFiles = []string{"ssh_host_ed25519_key", "ssh_host_rsa_key"}

// SSHDRuntime is where the entrypoint put what sshd reads, and who may log in.
type SSHDRuntime struct {
	// User is the one account that may log in: the container's own non-root user. An
	// sshd that is not root cannot switch users anyway.
	User string
	// HostKeys are the private host-key files (copies with mode 0600).
	HostKeys []string
	// AuthorizedKeys is the private copy of the authorized_keys file.
	AuthorizedKeys string
	// PidFile is written by sshd.
	PidFile string
	// Port to listen on (127.0.0.1 only); 0 means SSHPort.
	Port int
	// StrictModes makes sshd refuse an authorized_keys file when it, or any directory
	// above it, is writable by anyone but its owner or root. Only leave it off where no
	// other user exists to exploit that: the entrypoint decides, see its strict-modes check.
	StrictModes bool
	// Env is set in every SSH session (NAME=VALUE): the container's own environment (CUDA,
	// conda and PATH settings of the image), which sshd would otherwise not pass on.
	Env []string
}

// RuntimeSSHDir is where the entrypoint writes sshd's files under a runtime directory.
func RuntimeSSHDir(runtimeDir string) string { return filepath.Join(runtimeDir, "ssh") }

// DefaultSSHDRuntime lays sshd's files out under dir (RuntimeSSHDir of RuntimeDir in the pod).
func DefaultSSHDRuntime(user, dir string) SSHDRuntime {
	rt := SSHDRuntime{
		User:           user,
		AuthorizedKeys: filepath.Join(dir, AuthorizedKeysFile),
		PidFile:        filepath.Join(dir, "sshd.pid"),
		Port:           SSHPort,
		StrictModes:    true,
	}
	for _, k := range ServedHostKeyFiles {
		rt.HostKeys = append(rt.HostKeys, filepath.Join(dir, k))
	}
	return rt
}

// SSHDConfig renders a complete sshd_config (run with `sshd -f`, so the image's own
// /etc/ssh/sshd_config and its includes play no part): key-only logins of one non-root
// user on 127.0.0.1, modern algorithms, keep-alives from cfg.
func SSHDConfig(cfg SSHConfig, rt SSHDRuntime) (string, error) {
	if err := rt.validate(); err != nil {
		return "", err
	}
	port := rt.Port
	if port == 0 {
		port = SSHPort
	}
	var b strings.Builder
	line := func(k string, v ...string) { fmt.Fprintf(&b, "%s %s\n", k, strings.Join(v, " ")) }
	b.WriteString("# Written by the trainenv entrypoint; changes are overwritten at each start.\n")
	line("ListenAddress", "127.0.0.1")
	line("Port", strconv.Itoa(port))
	line("AddressFamily", "inet")
	for _, k := range rt.HostKeys {
		line("HostKey", k)
	}
	line("PidFile", rt.PidFile)

	// Who and how: one user, public keys only.
	line("AllowUsers", rt.User)
	line("PermitRootLogin", "no")
	line("AuthenticationMethods", "publickey")
	line("PubkeyAuthentication", "yes")
	line("PasswordAuthentication", "no")
	line("KbdInteractiveAuthentication", "no")
	line("PermitEmptyPasswords", "no")
	line("HostbasedAuthentication", "no")
	line("IgnoreRhosts", "yes")
	line("GSSAPIAuthentication", "no")
	line("KerberosAuthentication", "no")
	line("UsePAM", "no") // PAM needs root; key checks need none of it
	line("AuthorizedKeysFile", rt.AuthorizedKeys)
	line("StrictModes", yesNo(rt.StrictModes))
	line("MaxAuthTries", "3")
	line("LoginGraceTime", "30")
	line("PermitUserEnvironment", "no")

	// What a session may do: shells, commands, sftp and local port forwarding (VS Code
	// Remote-SSH forwards its server's port); nothing that reaches back to the client.
	line("AllowTcpForwarding", "local")
	line("AllowStreamLocalForwarding", "no")
	line("GatewayPorts", "no")
	line("PermitListen", "none")
	line("X11Forwarding", "no")
	line("AllowAgentForwarding", "no")
	line("PermitTunnel", "no")
	line("Subsystem", "sftp", "internal-sftp") // images need not ship sftp-server
	line("PrintMotd", "no")
	line("UseDNS", "no")
	if len(rt.Env) > 0 {
		env, err := setEnvLine(rt.Env)
		if err != nil {
			return "", err
		}
		line("SetEnv", env)
	}

	line("KexAlgorithms", strings.Join(SSHKexAlgorithms, ","))
	line("Ciphers", strings.Join(SSHCiphers, ","))
	line("MACs", strings.Join(SSHMACs, ","))
	line("HostKeyAlgorithms", strings.Join(SSHHostKeyAlgorithms, ","))

	// Keep-alive: probes inside the encrypted channel reap vanished clients and keep
	// NATs and the kubelet's streaming idle timeout from closing live ones.
	line("ClientAliveInterval", strconv.Itoa(int(cfg.ClientAliveIntervalSeconds)))
	line("ClientAliveCountMax", strconv.Itoa(int(cfg.ClientAliveCountMax)))
	line("TCPKeepAlive", yesNo(cfg.TCPKeepAlive))

	line("LogLevel", "VERBOSE") // logs the fingerprint of the key of each login
	return b.String(), nil
}

func (rt SSHDRuntime) validate() error {
	switch {
	case rt.User == "" || rt.User == "root":
		return fmt.Errorf("sshd needs the non-root user that may log in, not %q", rt.User)
	case len(rt.HostKeys) == 0:
		return fmt.Errorf("sshd needs at least one host key")
	case rt.AuthorizedKeys == "" || rt.PidFile == "":
		return fmt.Errorf("sshd needs the authorized_keys and pid file paths")
	}
	for _, p := range append([]string{rt.AuthorizedKeys, rt.PidFile}, rt.HostKeys...) {
		if !filepath.IsAbs(p) || strings.ContainsAny(p, " \t\n\"'#") {
			return fmt.Errorf("sshd path %q must be absolute, without blanks, quotes or #", p)
		}
	}
	return nil
}

// setEnvLine quotes NAME=VALUE pairs for one SetEnv line (sshd reads only the first).
// Values sshd's tokenizer cannot carry unambiguously are refused, not mangled.
func setEnvLine(env []string) (string, error) {
	parts := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || !validEnvName(name) {
			return "", fmt.Errorf("SetEnv: %q is not NAME=VALUE", kv)
		}
		if !SSHEnvValueOK(kv) {
			return "", fmt.Errorf("SetEnv: the value of %s has double quotes, backslashes or control characters", name)
		}
		parts = append(parts, `"`+kv+`"`)
	}
	return strings.Join(parts, " "), nil
}

// SSHEnvValueOK says whether NAME=VALUE can be passed through SetEnv.
func SSHEnvValueOK(kv string) bool {
	for _, r := range kv {
		if r < 0x20 || r == 0x7f || r == '"' || r == '\\' {
			return false
		}
	}
	return true
}

func validEnvName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, r := range s {
		if r != '_' && (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
