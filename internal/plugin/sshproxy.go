package plugin

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	streamhttp "k8s.io/streaming/pkg/httpstream"

	"github.com/trainenv/trainenv/internal/access"
)

func newSSHProxyCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "ssh-proxy NAME",
		Short: "Carry an SSH connection to the environment on stdin/stdout (ssh's ProxyCommand)",
		Long: `Tunnels stdin and stdout to the environment's SSH server over one port-forward
stream, with no local listening port. Meant as ssh's ProxyCommand (see ssh-config). If the
pod is not running yet it waits up to --pod-running-timeout, retrying with backoff.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClients(flags)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			conn, err := dialWithBackoff(ctx, c, args[0], streams.ErrOut)
			if err != nil {
				return err
			}
			defer func() { _ = conn.Close() }()
			s, err := openStream(conn, access.SSHPort, 0)
			if err != nil {
				return err
			}
			return s.pipe(stdio{streams.In, streams.Out})
		},
	}
	cmd.Flags().DurationVar(&timeout, "pod-running-timeout", time.Minute, "How long to wait for the environment's pod to run.")
	return cmd
}

// dialWithBackoff connects to the environment's running pod, retrying until ctx ends.
func dialWithBackoff(ctx context.Context, c *clients, name string, log io.Writer) (streamhttp.Connection, error) {
	b := DefaultBackoff()
	for {
		var pod *corev1.Pod
		pod, err := c.runningPod(ctx, name)
		if err == nil {
			var conn streamhttp.Connection
			if conn, err = c.dialPod(pod); err == nil {
				return conn, nil
			}
		}
		d := b.Next()
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
			return nil, err
		}
		fmt.Fprintf(log, "ssh-proxy: %v; retrying in %s\n", err, d.Round(100*time.Millisecond))
		c.waitPodReady(ctx, name, d)
	}
}

// stdio joins stdin and stdout into one io.ReadWriter.
type stdio struct {
	io.Reader
	io.Writer
}
