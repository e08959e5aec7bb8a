package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
)

func newResumeCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "resume NAME",
		Short: "Resume an environment that was suspended because nobody used it (spec.idleSuspend)",
		Long: `Asks the operator to start an environment again that it suspended for idleness, by
setting the annotation ` + trainenvv1.AnnotationResumeRequestedAt + ` to the current time.
Your spec is not changed, so spec.idleSuspend stays in force: the environment is suspended
again after the next idle period. An environment suspended with spec.suspend is resumed by
setting spec.suspend to false instead.`,
		Example: "  kubectl trainenv resume alice -n ml && kubectl trainenv connect alice -n ml",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClients(flags)
			if err != nil {
				return err
			}
			msg, err := RequestResume(cmd.Context(), c.dynamic, c.namespace, args[0], time.Now())
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(streams.Out, msg)
			return err
		},
	}
}

// RequestResume sets the resume annotation of environment name and says what follows. The
// time is now, but always later than the suspension it resumes (the operator compares the
// two; a clock behind the node's must not make the request look older).
func RequestResume(ctx context.Context, dyn dynamic.Interface, namespace, name string, now time.Time) (string, error) {
	c := &clients{dynamic: dyn, namespace: namespace}
	te, err := c.environment(ctx, name)
	if err != nil {
		return "", err
	}
	if te.Spec.Suspend {
		return "", fmt.Errorf("environment %s is suspended by spec.suspend; resume it with: kubectl patch trainenv %s -n %s --type merge -p '{\"spec\":{\"suspend\":false}}'",
			name, name, namespace)
	}
	at := now.UTC().Truncate(time.Second)
	is := te.Status.IdleSuspension
	if is != nil && !at.After(is.SuspendedAt.Time) {
		at = is.SuspendedAt.UTC().Add(time.Second)
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{trainenvv1.AnnotationResumeRequestedAt: at.Format(time.RFC3339)},
	}})
	if err != nil {
		return "", err
	}
	if _, err := dyn.Resource(environments).Namespace(namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return "", fmt.Errorf("requesting the resume of %s: %w", name, err)
	}
	if is == nil || is.ResumedAt != nil {
		return fmt.Sprintf("environment %s is not suspended for idleness (phase %s); the request is recorded in case it was just found idle",
			name, te.Status.Phase), nil
	}
	return fmt.Sprintf("resume of %s requested (it was suspended at %s: %s); watch it start with: kubectl get trainenv %s -n %s -w",
		name, is.SuspendedAt.UTC().Format(time.RFC3339), is.Message, name, namespace), nil
}
