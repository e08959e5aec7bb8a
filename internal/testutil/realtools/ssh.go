package realtools

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/trainenv/trainenv/internal/access"
)

// SSHDPath is the real sshd: it re-executes itself and needs its absolute path.
const SSHDPath = "/usr/sbin/sshd"

// ClientKey is an SSH user's ed25519 key pair, the private half in a file for ssh -i.
type ClientKey struct {
	Path          string
	AuthorizedKey []byte // an authorized_keys line
	Fingerprint   string
}

// NewClientKey generates a client key in a directory of the test's own user.
func NewClientKey(t testing.TB) ClientKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "client")
	if err != nil {
		t.Fatal(err)
	}
	k := ClientKey{Path: filepath.Join(t.TempDir(), "id_ed25519")}
	if err := os.WriteFile(k.Path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sshPub, _ := ssh.NewPublicKey(pub)
	k.AuthorizedKey = ssh.MarshalAuthorizedKey(sshPub)
	k.Fingerprint = ssh.FingerprintSHA256(sshPub)
	return k
}

// KnownHosts writes a known_hosts file with access' lines for host (an alias or host:port).
func KnownHosts(t testing.TB, host string, hostKeys map[string][]byte) string {
	t.Helper()
	lines, err := access.KnownHostsLines([]string{host}, hostKeys)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Login is one run of the real ssh client, as the test's own user, in batch mode with
// strict host-key checking against KnownHosts.
type Login struct {
	Port       int
	Key        string // private key file
	KnownHosts string
	Alias      string // HostKeyAlias; empty: the known_hosts entry is [127.0.0.1]:port
	User       string
	Opts       []string
	Command    string
	Stdin      string
}

// Run returns the client's combined output and exit code (255: ssh's own errors).
func (l Login) Run() (string, int) {
	args := []string{"-F", "/dev/null", "-i", l.Key, "-p", strconv.Itoa(l.Port),
		"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + l.KnownHosts, "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "CheckHostIP=no", "-o", "ConnectTimeout=10", "-l", l.User}
	if l.Alias != "" {
		args = append(args, "-o", "HostKeyAlias="+l.Alias)
	}
	args = append(args, l.Opts...)
	args = append(args, "127.0.0.1", l.Command)
	cmd := exec.Command("ssh", args...)
	cmd.Stdin = strings.NewReader(l.Stdin)
	return Run(cmd)
}

// SSHD is a real sshd running a configuration from access as the non-root user.
type SSHD struct {
	User     User
	Port     int
	Config   string
	HostKeys map[string][]byte // the host-key Secret's data
	Client   ClientKey         // the one authorized key
	Log      *Buffer
}

// SSHDOptions say what to run.
type SSHDOptions struct {
	Config access.SSHConfig
	Env    []string
	// Dir holds sshd's files (created, owned by the user); empty: a SafeDir.
	Dir string
	// Edit, when set, changes the rendered config before sshd reads it.
	Edit func(string) string
}

// StartSSHD writes host keys, authorized_keys and the config the way the entrypoint does,
// checks it with `sshd -t` and starts `sshd -D -e` as the non-root user.
func StartSSHD(t testing.TB, o SSHDOptions) *SSHD {
	t.Helper()
	Require(t, SSHDPath, "ssh", "ssh-keygen")
	s := &SSHD{User: NonRoot(t), Port: FreePort(t), Client: NewClientKey(t)}
	if o.Dir == "" {
		o.Dir = filepath.Join(SafeDir(t, s.User), "ssh")
	}
	s.User.Mkdir(t, o.Dir, 0o700)
	var err error
	if s.HostKeys, err = access.GenerateHostKeys(); err != nil {
		t.Fatal(err)
	}
	for _, k := range access.ServedHostKeyFiles {
		s.User.WriteFile(t, filepath.Join(o.Dir, k), s.HostKeys[k], 0o600)
	}
	s.User.WriteFile(t, filepath.Join(o.Dir, access.AuthorizedKeysFile), s.Client.AuthorizedKey, 0o600)

	runtime := access.DefaultSSHDRuntime(s.User.Name, o.Dir)
	runtime.Port = s.Port
	runtime.Env = o.Env
	conf, err := access.SSHDConfig(o.Config, runtime)
	if err != nil {
		t.Fatal(err)
	}
	if o.Edit != nil {
		conf = o.Edit(conf)
	}
	s.Config = filepath.Join(o.Dir, "sshd_config")
	s.User.WriteFile(t, s.Config, []byte(conf), 0o600)
	if out, code := Run(s.User.Command(SSHDPath, "-t", "-f", s.Config)); code != 0 {
		t.Fatalf("sshd -t rejects the config (exit %d):\n%s\n%s", code, out, conf)
	}
	s.Log = Start(t, s.User.Command(SSHDPath, "-D", "-e", "-f", s.Config), s.Port)
	return s
}

// Login prepares a login with the server's client key.
func (s *SSHD) Login(knownHosts, alias, user, command string) Login {
	return Login{Port: s.Port, Key: s.Client.Path, KnownHosts: knownHosts, Alias: alias, User: user, Command: command}
}
