package plugin

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/workload"
)

// clients talk to the cluster with the user's own credentials (kubeconfig and the
// standard kubectl flags): the plugin can do nothing the user may not.
type clients struct {
	config    *rest.Config
	kube      kubernetes.Interface
	dynamic   dynamic.Interface
	namespace string
}

func newClients(flags *genericclioptions.ConfigFlags) (*clients, error) {
	cfg, err := flags.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	ns, _, err := flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &clients{config: cfg, kube: kube, dynamic: dyn, namespace: ns}, nil
}

var environments = trainenvv1.GroupVersion.WithResource("trainingenvironments")

// environment reads a TrainingEnvironment (through the dynamic client: the plugin needs no
// generated clientset for one Get).
func (c *clients) environment(ctx context.Context, name string) (*trainenvv1.TrainingEnvironment, error) {
	u, err := c.dynamic.Resource(environments).Namespace(c.namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("TrainingEnvironment %q not found in namespace %s", name, c.namespace)
	}
	if err != nil {
		return nil, err
	}
	te := &trainenvv1.TrainingEnvironment{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, te); err != nil {
		return nil, fmt.Errorf("reading TrainingEnvironment %s: %w", name, err)
	}
	return te, nil
}

// runningPod returns the environment's pod, or an error saying why it cannot be reached
// yet: port-forward needs a running pod. It is looked up again on every reconnection, so
// a pod replaced by its StatefulSet is found.
func (c *clients) runningPod(ctx context.Context, name string) (*corev1.Pod, error) {
	te, err := c.environment(ctx, name)
	if err != nil {
		return nil, err
	}
	if te.Spec.Suspend {
		return nil, fmt.Errorf("environment %s is suspended; set spec.suspend to false", name)
	}
	if is := te.Status.IdleSuspension; is != nil && is.ResumedAt == nil {
		return nil, fmt.Errorf("environment %s was suspended because nobody used it (%s); resume it with: kubectl trainenv resume %s -n %s",
			name, is.Message, name, c.namespace)
	}
	podName := te.Status.PodName
	if podName == "" {
		podName = workload.PodName(te)
	}
	pod, err := c.kube.CoreV1().Pods(c.namespace).Get(ctx, podName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("pod %s does not exist yet (environment phase %q)", podName, te.Status.Phase)
	}
	if err != nil {
		return nil, err
	}
	if pod.Status.Phase != corev1.PodRunning || pod.DeletionTimestamp != nil {
		return nil, fmt.Errorf("pod %s is %s, not running yet", podName, pod.Status.Phase)
	}
	return pod, nil
}

// watchPod calls gone once when pod is deleted, replaced or stops running, so that a
// forward to a pod that no longer exists is re-dialed at once rather than when its
// streams fail. It returns when ctx ends or after calling gone.
func (c *clients) watchPod(ctx context.Context, pod *corev1.Pod, gone func()) {
	rv := pod.ResourceVersion
	for ctx.Err() == nil {
		w, err := c.kube.CoreV1().Pods(pod.Namespace).Watch(ctx, metav1.ListOptions{
			FieldSelector: "metadata.name=" + pod.Name, ResourceVersion: rv, AllowWatchBookmarks: true,
		})
		if err != nil {
			// The connection itself still works; the stream errors will tell.
			return
		}
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			rv = p.ResourceVersion
			if ev.Type == watch.Deleted || p.UID != pod.UID || p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
				w.Stop()
				gone()
				return
			}
		}
	}
}
