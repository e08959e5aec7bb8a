package plugin

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/access"
	"github.com/trainenv/trainenv/internal/workload"
)

type connectOptions struct {
	address     string
	jupyterPort int
	sshPort     int
}

func newConnectCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := connectOptions{}
	cmd := &cobra.Command{
		Use:   "connect NAME",
		Short: "Forward Jupyter (and SSH) to local ports, reconnecting by itself, and print the Jupyter URL",
		Long: `Forwards the environment's Jupyter server (and its SSH server, if enabled) to local
ports over the API server's port-forward, with your own credentials. When the connection
drops (pod restart, network blip, idle timeout) it finds the pod again and reconnects with
backoff; the local ports stay open. Runs until interrupted.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			c, err := newClients(flags)
			if err != nil {
				return err
			}
			return o.run(ctx, c, args[0], streams)
		},
	}
	cmd.Flags().StringVar(&o.address, "address", "127.0.0.1", "Local address to listen on.")
	cmd.Flags().IntVar(&o.jupyterPort, "jupyter-port", access.JupyterPort, "Local port for Jupyter (0: any free port).")
	cmd.Flags().IntVar(&o.sshPort, "ssh-port", access.SSHPort, "Local port for SSH (0: any free port).")
	return cmd
}

func (o connectOptions) run(ctx context.Context, c *clients, name string, streams genericiooptions.IOStreams) error {
	te, err := c.environment(ctx, name)
	if err != nil {
		return err
	}
	jupyter, ssh := workload.JupyterEnabled(te), workload.SSHEnabled(te)
	if !jupyter && !ssh {
		return fmt.Errorf("environment %s enables neither Jupyter nor SSH (spec.jupyter, spec.ssh)", name)
	}
	tunnel := newTunnel(c, name, streams.ErrOut)
	serve := make(chan error, 2)
	if jupyter {
		l, err := net.Listen("tcp", net.JoinHostPort(o.address, strconv.Itoa(o.jupyterPort)))
		if err != nil {
			return fmt.Errorf("listening for Jupyter: %w (choose another --jupyter-port)", err)
		}
		fmt.Fprintf(streams.Out, "Jupyter: %s\n", o.jupyterURL(ctx, c, te, l.Addr(), streams))
		go func() { serve <- tunnel.Serve(ctx, l, access.JupyterPort) }()
	}
	if ssh {
		l, err := net.Listen("tcp", net.JoinHostPort(o.address, strconv.Itoa(o.sshPort)))
		if err != nil {
			return fmt.Errorf("listening for SSH: %w (choose another --ssh-port)", err)
		}
		fmt.Fprintf(streams.Out, "SSH:     %s (or, without a local port: kubectl trainenv ssh-config %s -n %s >> ~/.ssh/config; ssh %s)\n",
			l.Addr(), name, te.Namespace, name)
		go func() { serve <- tunnel.Serve(ctx, l, access.SSHPort) }()
	}
	go tunnel.Run(ctx)
	select {
	case <-ctx.Done():
		return nil
	case err := <-serve:
		return err
	}
}

// jupyterURL is the local URL with the token, read from its Secret with the user's own
// credentials. Without the right to read it the URL comes without the token, and says so.
func (o connectOptions) jupyterURL(ctx context.Context, c *clients, te *trainenvv1.TrainingEnvironment, addr net.Addr, streams genericiooptions.IOStreams) string {
	u := "http://" + addr.String() + "/"
	ref := workload.JupyterTokenRef(te)
	if a := te.Status.Access; a != nil && a.Jupyter != nil {
		ref = a.Jupyter.TokenSecretRef
	}
	s, err := c.kube.CoreV1().Secrets(te.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsForbidden(err):
		fmt.Fprintf(streams.ErrOut, "you may not read Secret %s (key %q) holding the Jupyter token; ask for it, or for get on that Secret\n", ref.Name, ref.Key)
	case err != nil:
		fmt.Fprintf(streams.ErrOut, "reading the Jupyter token from Secret %s: %v\n", ref.Name, err)
	case len(s.Data[ref.Key]) == 0:
		fmt.Fprintf(streams.ErrOut, "Secret %s has no key %q holding the Jupyter token\n", ref.Name, ref.Key)
	default:
		u += "?token=" + url.QueryEscape(string(s.Data[ref.Key]))
	}
	return u
}
