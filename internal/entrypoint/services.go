package entrypoint

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/trainenv/trainenv/internal/access"
)

// prepareSSH copies the host keys and authorized_keys into a private directory (Secret
// volumes are group-readable under fsGroup, and sshd refuses such keys), writes
// sshd_config, checks it with `sshd -t` and returns sshd as a service and the path of its
// authorized_keys (kept in step with the Secret by KeySync).
func prepareSSH(cfg access.SSHConfig, p Paths, uid, gid int, log io.Writer) (Service, string, error) {
	user, err := ensureUser(p.Passwd, uid, gid, os.Getenv("HOME"))
	if err != nil {
		return Service{}, "", err
	}
	sshd, err := findSSHD(p.SSHD)
	if err != nil {
		return Service{}, "", err
	}
	dir := access.RuntimeSSHDir(p.RuntimeDir)
	if err := privateDir(dir); err != nil {
		return Service{}, "", err
	}
	for _, k := range access.ServedHostKeyFiles {
		if err := copyPrivate(filepath.Join(p.HostKeysDir, k), filepath.Join(dir, k)); err != nil {
			return Service{}, "", fmt.Errorf("host key (the environment's host-key Secret): %w", err)
		}
	}
	rt := access.DefaultSSHDRuntime(user.Name, dir)
	if err := copyPrivate(p.AuthorizedKeys, rt.AuthorizedKeys); err != nil {
		return Service{}, "", fmt.Errorf("authorized keys (the Secret named in spec.ssh.authorizedKeysSecretRef): %w", err)
	}
	rt.Port = p.SSHPort
	if ok, why := strictModesOK(rt.AuthorizedKeys, uid, user.Home); !ok {
		// In the pod the runtime directory sits in an emptyDir (mode 0777): StrictModes
		// would refuse every key. The keys are private copies in a 0700 directory, and
		// every container of the pod runs as this same uid.
		fmt.Fprintf(log, "trainenv-entrypoint: sshd StrictModes off: %s is writable by others\n", why)
		rt.StrictModes = false
	}
	var skipped []string
	rt.Env, skipped = sessionEnv(os.Environ())
	if len(skipped) > 0 {
		fmt.Fprintf(log, "trainenv-entrypoint: not passed to SSH sessions (quotes, backslashes or control characters): %s\n", strings.Join(skipped, " "))
	}
	conf, err := access.SSHDConfig(cfg, rt)
	if err != nil {
		return Service{}, "", err
	}
	path := filepath.Join(dir, "sshd_config")
	if err := writePrivate(path, []byte(conf)); err != nil {
		return Service{}, "", err
	}
	// No reaper runs yet: exec's own Wait is safe here.
	if out, err := exec.Command(sshd, "-t", "-f", path).CombinedOutput(); err != nil {
		return Service{}, "", fmt.Errorf("sshd rejects its configuration (%w): %s", err, strings.TrimSpace(string(out)))
	}
	env := slices.DeleteFunc(serverEnv(), func(kv string) bool { return envName(kv) == access.JupyterTokenEnv })
	// sshd logs (LogLevel VERBOSE) every login with its key's fingerprint: the audit trail.
	audit := &SSHAudit{AuthorizedKeys: rt.AuthorizedKeys, Out: os.Stdout}
	readLog := func(r io.Reader) { audit.Follow(r, os.Stderr) }
	return Service{Name: "sshd", Path: sshd, Args: []string{"-D", "-e", "-f", path}, Env: env, ReadLog: readLog}, rt.AuthorizedKeys, nil
}

func findSSHD(configured string) (string, error) { return findSSHDIn("/", configured) }

// findSSHDIn looks for sshd in the image whose root file system is at root.
func findSSHDIn(root, configured string) (string, error) {
	candidates := []string{"/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd"}
	if configured != "" {
		candidates = []string{configured}
	}
	for _, c := range candidates {
		if p := filepath.Join(root, c); executable(p) {
			return p, nil // an absolute path: sshd re-executes itself
		}
	}
	return "", fmt.Errorf("SSH is enabled but the image has no sshd (looked for %s): install OpenSSH's server in the image (Debian/Ubuntu: openssh-server)", strings.Join(candidates, ", "))
}

// prepareJupyter writes the Jupyter server's configuration and returns the server (JupyterLab
// when the image has it) and a probe of its activity.
func prepareJupyter(cfg access.JupyterConfig, p Paths) (Service, *JupyterProbe, error) {
	token := os.Getenv(access.JupyterTokenEnv)
	if strings.TrimSpace(token) == "" {
		return Service{}, nil, fmt.Errorf("%s is empty: the server never runs without authentication", access.JupyterTokenEnv)
	}
	dir := access.RuntimeJupyterDir(p.RuntimeDir)
	if err := privateDir(dir); err != nil {
		return Service{}, nil, err
	}
	conf, err := access.JupyterServerConfig(cfg, p.JupyterPort)
	if err != nil {
		return Service{}, nil, err
	}
	if err := writePrivate(access.JupyterConfigFile(dir), conf); err != nil {
		return Service{}, nil, err
	}
	if err := writePrivate(filepath.Join(dir, access.JupyterConfigBase+".py"), access.JupyterTokenConfig()); err != nil {
		return Service{}, nil, err
	}
	flag := "--config=" + access.JupyterConfigFile(dir)
	audit := &JupyterAudit{Out: os.Stdout}
	svc := Service{Name: "jupyter", Env: serverEnv(access.JupyterEnv(dir)...), ReadLog: func(r io.Reader) { audit.Follow(r, os.Stderr) }}
	switch {
	case lookPath("jupyter-lab", &svc.Path):
		svc.Args = []string{flag}
	case lookPath("jupyter-server", &svc.Path):
		svc.Args = []string{flag}
	case lookPath("jupyter", &svc.Path):
		svc.Args = []string{"server", flag}
	default:
		return Service{}, nil, errors.New("the image has no jupyter-lab, jupyter-server or jupyter on its PATH, and Jupyter is enabled: install JupyterLab (or jupyter_server)")
	}
	probe := &JupyterProbe{BaseURL: "http://127.0.0.1:" + strconv.Itoa(p.JupyterPort), Token: token}
	return svc, probe, nil
}

func lookPath(name string, into *string) bool {
	path, err := exec.LookPath(name)
	if err == nil {
		*into = path
	}
	return err == nil
}

// sessionEnv is the environment SSH sessions get through SetEnv: the container's own
// (PATH, CUDA and conda settings of the image), less trainenv's secrets and what sshd
// sets itself. Values SetEnv cannot carry are skipped and named.
func sessionEnv(environ []string) (env, skipped []string) {
	drop := map[string]bool{
		access.ConfigEnv: true, access.JupyterTokenEnv: true,
		"HOME": true, "USER": true, "LOGNAME": true, "SHELL": true, "MAIL": true,
		"PWD": true, "OLDPWD": true, "SHLVL": true, "_": true, "TERM": true,
	}
	for _, kv := range environ {
		name := envName(kv)
		switch {
		case drop[name] || strings.HasPrefix(name, "SSH_"):
		case !access.SSHEnvValueOK(kv):
			skipped = append(skipped, name)
		default:
			env = append(env, kv)
		}
	}
	return env, skipped
}

func envName(kv string) string {
	name, _, _ := strings.Cut(kv, "=")
	return name
}

// privateDir creates dir, or takes back one left by an earlier start of the container
// (the emptyDir outlives it), with mode 0700.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}

// writePrivate writes a file only the user can read, whatever was there before.
func writePrivate(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func copyPrivate(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if len(data) == 0 {
		return fmt.Errorf("%s is empty", from)
	}
	return writePrivate(to, data)
}
