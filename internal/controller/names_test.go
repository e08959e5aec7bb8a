package controller_test

import (
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/workload"
)

// TestEveryAcceptedNameRuns walks long names through the real API server and the
// controller: each is either refused at apply with a message naming metadata.name, or
// accepted and then every object derived from it (StatefulSet, its ControllerRevision and
// pod with the labels the StatefulSet controller sets, workspace claim, Secrets,
// NetworkPolicy) is admitted by the API server. Before the names were bounded, a 53- to
// 253-character name was stored and then never produced a pod.
func TestEveryAcceptedNameRuns(t *testing.T) {
	longest := func(n int) string { // a name of n characters, hyphens inside
		return ("e" + strings.Repeat("-0123456789", 26))[:n-1] + "z"
	}
	names := []struct {
		what, name string
		accepted   bool
	}{
		{"the longest name that runs", longest(trainenvv1.MaxNameLength), true},
		{"one character more", longest(trainenvv1.MaxNameLength + 1), false},
		{"a label's length", longest(63), false},
		{"a DNS subdomain's length (the ObjectMeta limit)", strings.Repeat("a", 61) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 63), false},
		{"a dotted name", "team.alice", false},
		{"a one-character name", "a", true},
	}
	for _, tc := range names {
		t.Run(fmt.Sprintf("%s (%d)", tc.what, len(tc.name)), func(t *testing.T) {
			g := NewWithT(t)
			f := newFixture(t)
			reg := registrytest.New(t)
			reg.Push("team/pytorch", "2.4", registrytest.Image(t))
			node := f.gpuNode(fmt.Sprintf("names-%d", len(tc.name))) // an A100 with 8 GPUs (the builder's default)
			f.putSecret("keys", map[string]string{"authorized_keys": authorizedKey(t)})
			te := &trainenvv1.TrainingEnvironment{
				ObjectMeta: metav1.ObjectMeta{Name: tc.name, Namespace: f.ns},
				Spec: trainenvv1.TrainingEnvironmentSpec{
					Image:     reg.Host + "/team/pytorch:2.4",
					GPU:       &trainenvv1.GPUSpec{Count: 1},
					Workspace: &trainenvv1.WorkspaceSpec{Size: resource.MustParse("10Gi")},
					Jupyter:   &trainenvv1.JupyterSpec{Enabled: true},
					SSH:       &trainenvv1.SSHSpec{Enabled: true, AuthorizedKeysSecretRef: &trainenvv1.SecretKeyReference{Name: "keys"}},
				},
			}
			err := k8s.Create(f.ctx, te)
			if !tc.accepted {
				g.Expect(err).To(HaveOccurred(), "a name that can never run must be refused at apply")
				g.Expect(err.Error()).To(ContainSubstring("metadata.name must be"))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			_, err, te = f.reconcile(te)
			g.Expect(err).NotTo(HaveOccurred())

			sts, err := f.statefulSet(te)
			g.Expect(err).NotTo(HaveOccurred(), "the StatefulSet is created")
			for _, obj := range []client.Object{
				&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: workload.WorkspaceClaimName(te)}},
				&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: workload.JupyterTokenSecretName(te)}},
				&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: workload.HostKeySecretName(te)}},
				&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: te.Name}},
			} {
				g.Expect(k8s.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: obj.GetName()}, obj)).To(Succeed(), "%T %s", obj, obj.GetName())
			}
			statefulSetControllerPod(g, f, sts, node.Name)
		})
	}
}

// statefulSetControllerPod creates what the StatefulSet controller creates for sts (envtest
// runs no controller-manager): a ControllerRevision named NAME-HASH, where HASH is
// rand.SafeEncodeString of a 32-bit FNV hash (up to 10 characters; the longest is used),
// and the pod NAME-0 with the labels statefulset.kubernetes.io/pod-name and
// controller-revision-hash (the revision's name) and its hostname. The real API server
// validates every name and label value.
func statefulSetControllerPod(g Gomega, f *fixture, sts *appsv1.StatefulSet, node string) {
	revision := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Name: sts.Name + "-" + strings.Repeat("b", 10), Namespace: sts.Namespace, Labels: sts.Spec.Template.Labels},
		Data:       runtime.RawExtension{Raw: []byte(`{}`)},
		Revision:   1,
	}
	g.Expect(k8s.Create(f.ctx, revision)).To(Succeed(), "the StatefulSet's ControllerRevision")
	podName := sts.Name + "-0"
	labels := map[string]string{
		appsv1.StatefulSetPodNameLabel:        podName,
		appsv1.ControllerRevisionHashLabelKey: revision.Name,
		appsv1.PodIndexLabel:                  "0",
	}
	for k, v := range sts.Spec.Template.Labels {
		labels[k] = v
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: podName, Namespace: sts.Namespace, Labels: labels},
		Spec:       sts.Spec.Template.Spec,
	}
	pod.Spec.Hostname = podName
	pod.Spec.NodeName = node
	g.Expect(k8s.Create(f.ctx, pod)).To(Succeed(), "the StatefulSet's pod")
}
