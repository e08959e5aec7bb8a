package plugin

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/gen"
)

func fakeEnvironments(t *testing.T, objs ...runtime.Object) *dynamicfake.FakeDynamicClient {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := trainenvv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return dynamicfake.NewSimpleDynamicClient(scheme, objs...)
}

func idleEnvironment(name string, suspendedAt time.Time, mods ...gen.TrainingEnvironmentModifier) *trainenvv1.TrainingEnvironment {
	return gen.TrainingEnvironment(name, append([]gen.TrainingEnvironmentModifier{
		gen.WithTypeMeta(), gen.WithNamespace("ml"), gen.WithImage("pytorch"), gen.WithIdleSuspend(60),
		gen.WithPhase(trainenvv1.PhaseSuspended), gen.WithIdleSuspension(suspendedAt, "trainenv: idle for 1h0m0s"),
	}, mods...)...)
}

func resumeAnnotation(t *testing.T, dyn *dynamicfake.FakeDynamicClient, name string) (string, bool) {
	t.Helper()
	u, err := dyn.Resource(environments).Namespace("ml").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v, ok := u.GetAnnotations()[trainenvv1.AnnotationResumeRequestedAt]
	return v, ok
}

func TestResumeRequestIsLaterThanTheSuspension(t *testing.T) {
	suspended := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	dyn := fakeEnvironments(t,
		idleEnvironment("behind", suspended), idleEnvironment("later", suspended),
		idleEnvironment("running", suspended, func(te *trainenvv1.TrainingEnvironment) {
			te.Status.IdleSuspension.ResumedAt = &metav1.Time{Time: suspended.Add(time.Minute)}
			te.Status.Phase = trainenvv1.PhaseRunning
		}),
		idleEnvironment("asked", suspended, func(te *trainenvv1.TrainingEnvironment) { te.Spec.Suspend = true }))
	ctx := context.Background()
	for _, tc := range []struct {
		name, want, message string
		now                 time.Time
	}{
		// This machine's clock is behind the node's: the request still counts.
		{"behind", "2026-11-23T12:00:01Z", "resume of behind requested (it was suspended at 2026-11-23T12:00:00Z: trainenv: idle for 1h0m0s)", suspended.Add(-5 * time.Second)},
		{"later", "2026-11-23T14:30:00Z", "resume of later requested", suspended.Add(150*time.Minute + 300*time.Millisecond)},
		// Not suspended: recorded all the same (it may have just been found idle), and said so.
		{"running", "2026-11-23T13:00:00Z", "environment running is not suspended for idleness (phase Running)", suspended.Add(time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := RequestResume(ctx, dyn, "ml", tc.name, tc.now)
			if err != nil || !strings.HasPrefix(msg, tc.message) {
				t.Errorf("RequestResume: %q, %v; want a message starting %q", msg, err, tc.message)
			}
			if got, _ := resumeAnnotation(t, dyn, tc.name); got != tc.want {
				t.Errorf("annotation %q, want %q", got, tc.want)
			}
		})
	}

	// spec.suspend is the user's own: the plugin does not pretend to override it.
	_, err := RequestResume(ctx, dyn, "ml", "asked", suspended.Add(time.Hour))
	if err == nil || !strings.Contains(err.Error(), `--type merge -p '{"spec":{"suspend":false}}'`) {
		t.Errorf("resume of an environment with spec.suspend: %v, want an error saying how to unset it", err)
	}
	if v, ok := resumeAnnotation(t, dyn, "asked"); ok {
		t.Errorf("annotation set to %q on an environment suspended by its spec", v)
	}
	if _, err := RequestResume(ctx, dyn, "ml", "missing", suspended); err == nil || !strings.Contains(err.Error(), `"missing" not found`) {
		t.Errorf("resume of a missing environment: %v", err)
	}
}

func TestResumeIsASubcommand(t *testing.T) {
	cmd, _, err := NewCommand(genericiooptions.NewTestIOStreamsDiscard()).Find([]string{"resume", "alice"})
	if err != nil || cmd.Name() != "resume" {
		t.Fatalf("kubectl trainenv resume: %v, %v", cmd, err)
	}
}
