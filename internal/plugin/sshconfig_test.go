package plugin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
)

func TestSSHConfigBlock(t *testing.T) {
	h := sshHost{
		Host: "alice", Alias: "trainenv.ml.alice", User: "jovyan",
		ProxyCommand:   []string{"kubectl", "trainenv", "ssh-proxy", "alice", "-n", "ml", "--context", "team a's"},
		KnownHostsFile: "/home/me/My Files/known_hosts",
	}
	want := `Host alice
  HostName trainenv.ml.alice
  HostKeyAlias trainenv.ml.alice
  User jovyan
  ProxyCommand kubectl trainenv ssh-proxy alice -n ml --context 'team a'\''s'
  UserKnownHostsFile "/home/me/My Files/known_hosts"
  StrictHostKeyChecking yes
  ServerAliveInterval 30
  ServerAliveCountMax 6
`
	if got := h.render(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	h.User = ""
	if strings.Contains(h.render(), "  User ") {
		t.Fatal("no User line without --user")
	}
}

func TestSSHConfigFollowsTheKubectlFlagsAndStatus(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	kubeconfig := filepath.Join(dir, "config")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: "arn:aws:eks:eu-west-1:1:cluster/gpu", context: {cluster: c, user: u, namespace: ml}}]
current-context: "arn:aws:eks:eu-west-1:1:cluster/gpu"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &kubeconfig
	te := &trainenvv1.TrainingEnvironment{
		ObjectMeta: metav1.ObjectMeta{Name: "alice", Namespace: "ml"},
		Spec:       trainenvv1.TrainingEnvironmentSpec{SSH: &trainenvv1.SSHSpec{Enabled: true}},
	}
	o := sshConfigOptions{kubectl: "kubectl"}
	if _, _, err := o.sshHost(flags, te); err == nil || !strings.Contains(err.Error(), "not published its SSH host keys") {
		t.Fatalf("want a 'not published' error before status.access, got %v", err)
	}
	te.Status.Access = &trainenvv1.AccessStatus{SSH: &trainenvv1.SSHAccessStatus{
		HostKeyAlias: "trainenv.ml.alice", KnownHosts: "trainenv.ml.alice ssh-ed25519 AAAA",
	}}
	h, known, err := o.sshHost(flags, te)
	if err != nil {
		t.Fatal(err)
	}
	wantProxy := "kubectl trainenv ssh-proxy alice -n ml --kubeconfig " + kubeconfig + " --context arn:aws:eks:eu-west-1:1:cluster/gpu"
	if got := shellJoin(h.ProxyCommand); got != wantProxy {
		t.Fatalf("ProxyCommand %q, want %q", got, wantProxy)
	}
	wantFile := filepath.Join(dir, ".ssh", "trainenv", "arn_aws_eks_eu-west-1_1_cluster_gpu.ml.alice.known_hosts")
	if h.KnownHostsFile != wantFile || h.Host != "alice" || h.Alias != "trainenv.ml.alice" {
		t.Fatalf("got %+v", h)
	}
	if err := writeKnownHosts(h.KnownHostsFile, known); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(h.KnownHostsFile)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("known_hosts file: %v, mode %v", err, info.Mode())
	}
	if data, _ := os.ReadFile(h.KnownHostsFile); string(data) != "trainenv.ml.alice ssh-ed25519 AAAA\n" {
		t.Fatalf("known_hosts content %q", data)
	}
}
