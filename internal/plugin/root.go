// Package plugin is `kubectl trainenv`: it connects users to their TrainingEnvironments
// with their own credentials, over the API server's port-forward (websocket, falling back
// to SPDY), keeping the forwards alive across drops, and writes the ssh configuration
// that verifies the environment's host keys.
package plugin

import (
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// NewCommand returns the root command of kubectl-trainenv.
func NewCommand(streams genericiooptions.IOStreams) *cobra.Command {
	flags := genericclioptions.NewConfigFlags(true)
	root := &cobra.Command{
		Use:          "kubectl-trainenv",
		Short:        "Reach TrainingEnvironments: Jupyter and SSH over kubectl port-forward, kept alive",
		SilenceUsage: true,
		Annotations:  map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl trainenv"},
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	flags.AddFlags(root.PersistentFlags())
	root.AddCommand(newConnectCommand(flags, streams), newSSHConfigCommand(flags, streams), newSSHProxyCommand(flags, streams),
		newResumeCommand(flags, streams))
	return root
}
