package workload

import (
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
)

// NetworkPolicy renders the policy that denies all ingress to the environment's pod: an
// Ingress policy with no rules. Users reach the pod through the API server's port-forward,
// which enters the pod's network namespace through the kubelet and is not subject to
// NetworkPolicy; the servers listen on loopback as well, so this is defense in depth
// against other pods of the cluster.
func NetworkPolicy(te *trainenvv1.TrainingEnvironment) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: te.Name, Namespace: te.Namespace, Labels: Labels(te)},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{LabelEnvironment: te.Name}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		},
	}
}
