package plugin

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func testPod(phase corev1.PodPhase, ready corev1.ConditionStatus) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-0", Namespace: "ml"},
		Status: corev1.PodStatus{
			Phase:      phase,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}},
		},
	}
}

func TestPodReady(t *testing.T) {
	deleting := testPod(corev1.PodRunning, corev1.ConditionTrue)
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	for name, tc := range map[string]struct {
		pod  *corev1.Pod
		want bool
	}{
		"running and ready":       {testPod(corev1.PodRunning, corev1.ConditionTrue), true},
		"running, not yet ready":  {testPod(corev1.PodRunning, corev1.ConditionFalse), false},
		"pending":                 {testPod(corev1.PodPending, corev1.ConditionFalse), false},
		"ready but being deleted": {deleting, false},
		"no Ready condition":      {&corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning}}, false},
	} {
		if got := podReady(tc.pod); got != tc.want {
			t.Errorf("%s: podReady = %v, want %v", name, got, tc.want)
		}
	}
}

// A pod re-created while connect waits out a long backoff ends the wait as soon as it is
// ready.
func TestAwaitPodReadyWakesWhenTheNewPodIsReady(t *testing.T) {
	kube := fake.NewClientset()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan bool, 1)
	go func() { done <- awaitPodReady(ctx, kube, "ml", "alice-0") }()

	pods := kube.CoreV1().Pods("ml")
	pod, err := pods.Create(ctx, testPod(corev1.PodPending, corev1.ConditionFalse), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-done:
		t.Fatalf("the wait ended (%v) while the pod was only pending", got)
	case <-time.After(100 * time.Millisecond):
	}
	// The watch may start after a given write: keep writing the ready pod until it is seen.
	pod.Status = testPod(corev1.PodRunning, corev1.ConditionTrue).Status
	for i := 0; ; i++ {
		pod.Labels = map[string]string{"write": string(rune('a' + i%26))}
		if pod, err = pods.Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-done:
			if !got {
				t.Fatal("awaitPodReady = false, want true once the pod is ready")
			}
			return
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("the wait did not end when the pod became ready")
		}
	}
}

// A pod that is already ready when the wait starts does not end it: the attempt that just
// failed saw that pod, and retrying at once would spin.
func TestAwaitPodReadyIgnoresAPodAlreadyReady(t *testing.T) {
	kube := fake.NewClientset(testPod(corev1.PodRunning, corev1.ConditionTrue))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if awaitPodReady(ctx, kube, "ml", "alice-0") {
		t.Fatal("awaitPodReady = true for a pod that was ready before the wait")
	}
	if ctx.Err() == nil {
		t.Fatal("awaitPodReady returned before its context ended")
	}
}
