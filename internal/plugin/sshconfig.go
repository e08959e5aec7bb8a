package plugin

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/workload"
)

// sshHost is what an ~/.ssh/config block for an environment needs.
type sshHost struct {
	// Host is the name the user types: `ssh Host`.
	Host string
	// Alias is the host-key alias (status.access.ssh.hostKeyAlias), also used as HostName:
	// the ProxyCommand ignores it, and ssh shows it in its messages.
	Alias string
	// User to log in as; empty leaves ssh's default (the local user name).
	User string
	// ProxyCommand runs ssh-proxy with the same cluster, context and namespace.
	ProxyCommand []string
	// KnownHostsFile holds the environment's host keys.
	KnownHostsFile string
}

// render returns the ~/.ssh/config block. Host keys are always checked, against keys the
// operator published, so there is never a trust-on-first-use prompt. Keep-alives every 30 s
// carry the session through NATs and idle timeouts; 6 unanswered ones (3 minutes) end a
// session whose tunnel is gone, so that ssh does not hang.
func (h sshHost) render() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Host %s\n", h.Host)
	fmt.Fprintf(&b, "  HostName %s\n", h.Alias)
	fmt.Fprintf(&b, "  HostKeyAlias %s\n", h.Alias)
	if h.User != "" {
		fmt.Fprintf(&b, "  User %s\n", h.User)
	}
	fmt.Fprintf(&b, "  ProxyCommand %s\n", shellJoin(h.ProxyCommand))
	fmt.Fprintf(&b, "  UserKnownHostsFile %s\n", sshQuote(h.KnownHostsFile))
	b.WriteString("  StrictHostKeyChecking yes\n")
	b.WriteString("  ServerAliveInterval 30\n")
	b.WriteString("  ServerAliveCountMax 6\n")
	return b.String()
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellJoin quotes words for the shell that runs ssh's ProxyCommand.
func shellJoin(words []string) string {
	out := make([]string, len(words))
	for i, w := range words {
		if shellSafe.MatchString(w) {
			out[i] = w
		} else {
			out[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}

// sshQuote quotes a path for ssh_config, which splits arguments on whitespace.
func sshQuote(s string) string {
	if strings.ContainsAny(s, " \t\"") {
		return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
	}
	return s
}

type sshConfigOptions struct {
	host, user, knownHostsFile, kubectl string
}

func newSSHConfigCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := sshConfigOptions{}
	cmd := &cobra.Command{
		Use:   "ssh-config NAME",
		Short: "Print an ~/.ssh/config block for the environment and write its known host keys",
		Long: `Prints a Host block to append to ~/.ssh/config, so that "ssh NAME" and VS Code
Remote-SSH reach the environment through "kubectl trainenv ssh-proxy" (no local port),
verifying the host keys the operator generated and published in status.access.ssh. The
keys are written to the known_hosts file the block names.`,
		Example: "  kubectl trainenv ssh-config alice -n ml >> ~/.ssh/config && ssh alice",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClients(flags)
			if err != nil {
				return err
			}
			te, err := c.environment(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			h, knownHosts, err := o.sshHost(flags, te)
			if err != nil {
				return err
			}
			if err := writeKnownHosts(h.KnownHostsFile, knownHosts); err != nil {
				return err
			}
			fmt.Fprintf(streams.ErrOut, "wrote the host keys of %s to %s\n", te.Name, h.KnownHostsFile)
			_, err = fmt.Fprint(streams.Out, h.render())
			return err
		},
	}
	cmd.Flags().StringVar(&o.host, "host", "", "Host name for ssh (default: the environment's name).")
	cmd.Flags().StringVar(&o.user, "user", "", "User to log in as: the image's user of uid 1000 (default: ssh's, your local user name).")
	cmd.Flags().StringVar(&o.knownHostsFile, "known-hosts-file", "", "Where to write the host keys (default: ~/.ssh/trainenv/CONTEXT.NAMESPACE.NAME.known_hosts).")
	cmd.Flags().StringVar(&o.kubectl, "kubectl", "kubectl", "kubectl command the ProxyCommand runs.")
	return cmd
}

// sshHost builds the block from the environment's status and the kubectl flags in effect, so
// that ssh reaches the same cluster, context and namespace later, whatever the current
// context is then.
func (o sshConfigOptions) sshHost(flags *genericclioptions.ConfigFlags, te *trainenvv1.TrainingEnvironment) (sshHost, string, error) {
	if !workload.SSHEnabled(te) {
		return sshHost{}, "", fmt.Errorf("environment %s does not enable SSH (spec.ssh.enabled)", te.Name)
	}
	a := te.Status.Access
	if a == nil || a.SSH == nil || a.SSH.KnownHosts == "" {
		return sshHost{}, "", fmt.Errorf("environment %s has not published its SSH host keys yet (status.access.ssh); see kubectl describe trainenv %s", te.Name, te.Name)
	}
	raw, err := flags.ToRawKubeConfigLoader().RawConfig()
	if err != nil {
		return sshHost{}, "", err
	}
	context := raw.CurrentContext
	if flags.Context != nil && *flags.Context != "" {
		context = *flags.Context
	}
	proxy := []string{o.kubectl, "trainenv", "ssh-proxy", te.Name, "-n", te.Namespace}
	if flags.KubeConfig != nil && *flags.KubeConfig != "" {
		proxy = append(proxy, "--kubeconfig", absPath(*flags.KubeConfig))
	} else if env := os.Getenv("KUBECONFIG"); env != "" && !strings.Contains(env, string(os.PathListSeparator)) {
		proxy = append(proxy, "--kubeconfig", absPath(env))
	}
	if context != "" {
		proxy = append(proxy, "--context", context)
	}
	h := sshHost{
		Host: cmpOr(o.host, te.Name), Alias: a.SSH.HostKeyAlias, User: o.user, ProxyCommand: proxy,
		KnownHostsFile: o.knownHostsFile,
	}
	if h.KnownHostsFile == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return sshHost{}, "", err
		}
		name := fileSafe.ReplaceAllString(strings.Join([]string{cmpOr(context, "default"), te.Namespace, te.Name}, "."), "_")
		h.KnownHostsFile = filepath.Join(home, ".ssh", "trainenv", name+".known_hosts")
	}
	return h, a.SSH.KnownHosts + "\n", nil
}

var fileSafe = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// writeKnownHosts replaces the file: it holds this environment's keys only.
func writeKnownHosts(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func absPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

func cmpOr(v, fallback string) string {
	if v == "" {
		return fallback
	}
	return v
}
