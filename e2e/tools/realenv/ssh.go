package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// plugin runs `kubectl trainenv ARGS...` as a user does (kubectl finds the plugin on PATH),
// with extraEnv.
func (r *run) plugin(ctx context.Context, extraEnv []string, args ...string) (string, string, error) {
	c := exec.CommandContext(ctx, r.o.kubectl, append([]string{"trainenv"}, args...)...)
	c.Env = append(append([]string{}, r.k.env...), extraEnv...)
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	err := c.Run()
	if err != nil {
		err = fmt.Errorf("kubectl trainenv %s: %w: %s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), errOut.String(), err
}

// sshConfig writes the Host block of `kubectl trainenv ssh-config` (with kubeconfig, the
// ProxyCommand's) and returns ssh's arguments for it.
func (r *run) sshConfig(ctx context.Context, file, kubeconfig string) ([]string, error) {
	known := file + ".known_hosts"
	block, _, err := r.plugin(ctx, []string{"KUBECONFIG=" + kubeconfig}, "ssh-config", r.o.name, "-n", r.o.namespace,
		"--user", r.o.sshUser, "--kubectl", r.o.kubectl, "--known-hosts-file", known)
	if err != nil {
		return nil, err
	}
	if err := writeFile(file, block); err != nil {
		return nil, err
	}
	return []string{"-F", file, "-i", filepath.Join(r.work, "id_ed25519"), "-o", "IdentitiesOnly=yes",
		"-o", "BatchMode=yes", "-o", "ConnectTimeout=30"}, nil
}

func (r *run) ssh(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, "ssh", args...)
	c.Env = r.k.env
	out, err := c.CombinedOutput()
	return string(out), err
}

// checkSSH: ssh through ssh-config's ProxyCommand (kubectl trainenv ssh-proxy) logs in as
// the image's user, verifying the host key the operator generated and published; the real
// sshd in the container refuses passwords and root.
func (r *run) checkSSH(ctx context.Context) error {
	e, err := r.environment(ctx)
	if err != nil {
		return err
	}
	if e.Status.Access == nil || e.Status.Access.SSH == nil || e.Status.Access.SSH.KnownHosts == "" {
		return fmt.Errorf("status.access.ssh has no host keys")
	}
	cfg := filepath.Join(r.work, "ssh_config")
	opts, err := r.sshConfig(ctx, cfg, r.o.kubeconfig)
	if err != nil {
		return err
	}
	block, _ := os.ReadFile(cfg)
	for _, want := range []string{"StrictHostKeyChecking yes", "HostKeyAlias " + e.Status.Access.SSH.HostKeyAlias, "ssh-proxy " + r.o.name} {
		if !strings.Contains(string(block), want) {
			return fmt.Errorf("ssh-config's block lacks %q:\n%s", want, block)
		}
	}
	known, _ := os.ReadFile(cfg + ".known_hosts")
	if strings.TrimSpace(string(known)) != strings.TrimSpace(e.Status.Access.SSH.KnownHosts) {
		return fmt.Errorf("ssh-config wrote known hosts %q, status.access.ssh.knownHosts is %q", known, e.Status.Access.SSH.KnownHosts)
	}

	start := time.Now()
	out, err := r.ssh(ctx, append(opts, "-v", r.o.name, "id -u; python3 -c 'import torch; print(\"torch\", torch.__version__)'")...)
	if err != nil {
		return fmt.Errorf("ssh %s: %w: %s", r.o.name, err, tail(out, 15))
	}
	r.record("ssh login+torch", time.Since(start))
	if !regexp.MustCompile(`(?m)^1000\r?\n(?:.*\n)*?torch \d+\.\d+\S*`).MatchString(out) {
		return fmt.Errorf("ssh ran the commands but printed: %s", tail(out, 10))
	}
	// The key the server showed is one the operator published, and ssh checked it.
	m := regexp.MustCompile(`Server host key: (\S+) (SHA256:\S+)`).FindStringSubmatch(out)
	if m == nil || !slices.Contains(e.Status.Access.SSH.HostKeys, m[1]+" "+m[2]) {
		return fmt.Errorf("the server's host key %v is not one of status.access.ssh.hostKeys %v", m, e.Status.Access.SSH.HostKeys)
	}
	if !strings.Contains(out, "Host '"+e.Status.Access.SSH.HostKeyAlias+"' is known and matches") {
		return fmt.Errorf("ssh did not match the host key against the published known_hosts: %s", tail(out, 20))
	}

	// Another key for the same alias: ssh must refuse (the pin is enforced).
	impostor := filepath.Join(r.work, "impostor")
	if out, err := exec.CommandContext(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", impostor).CombinedOutput(); err != nil {
		return fmt.Errorf("ssh-keygen: %w: %s", err, out)
	}
	pub, _ := os.ReadFile(impostor + ".pub")
	wrong := filepath.Join(r.work, "wrong_known_hosts")
	f := strings.Fields(string(pub))
	_ = writeFile(wrong, e.Status.Access.SSH.HostKeyAlias+" "+f[0]+" "+f[1]+"\n")
	if out, err := r.ssh(ctx, append(opts, "-o", "UserKnownHostsFile="+wrong, r.o.name, "true")...); err == nil || !strings.Contains(out, "Host key verification failed") {
		return fmt.Errorf("ssh with a wrong pinned host key was not refused: %s", outcome(err, tail(out, 5)))
	}

	// Passwords: the server offers public keys only (no password, no keyboard-interactive).
	out, err = r.ssh(ctx, append(opts, "-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password,keyboard-interactive", r.o.name, "true")...)
	if err == nil || !regexp.MustCompile(`Permission denied \(publickey\)`).MatchString(out) {
		return fmt.Errorf("a password login was not refused with only publickey offered: %s", outcome(err, tail(out, 5)))
	}
	// Root, with the user's valid key.
	out, err = r.ssh(ctx, append(opts, "-l", "root", r.o.name, "true")...)
	if err == nil || !strings.Contains(out, "Permission denied") {
		return fmt.Errorf("a root login was not refused: %s", outcome(err, tail(out, 5)))
	}
	fmt.Printf("e2e realenv:   ssh %s@%s: host key %s %s pinned; password and root refused by sshd\n", r.o.sshUser, r.o.name, m[1], m[2])
	return nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
