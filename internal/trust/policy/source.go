package policy

import (
	"context"
	"fmt"

	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	pcv1beta1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// DefaultSystemNamespace is where policy-controller looks for the Secrets and ConfigMaps
// that ClusterImagePolicies reference (its "cosign-system" install namespace).
const DefaultSystemNamespace = "cosign-system"

// PolicySource supplies the cluster's trust policy: ClusterImagePolicies, TrustRoots, and
// the Secrets and ConfigMaps in policy-controller's system namespace that policies
// reference by name (public keys, CUE/Rego policies).
//
// ClusterImagePolicies come as v1alpha1, the CRD's storage version: listing it never calls
// the CRD's conversion webhook, which only exists where policy-controller runs. v1beta1
// objects are converted by policy-controller's own conversion (see FromV1beta1).
//
//nolint:revive // policy.PolicySource: "Source" alone would read as an image source beside registry.
type PolicySource interface {
	ClusterImagePolicies(ctx context.Context) ([]pcv1alpha1.ClusterImagePolicy, error)
	TrustRoots(ctx context.Context) ([]pcv1alpha1.TrustRoot, error)
	// Secret and ConfigMap return a NotFound API error when the object does not exist.
	Secret(ctx context.Context, name string) (*corev1.Secret, error)
	ConfigMap(ctx context.Context, name string) (*corev1.ConfigMap, error)
}

// The Secrets and ConfigMaps that policies reference live in policy-controller's namespace
// only: a Role there (not a ClusterRole) grants reading them, by name, never listing.
// +kubebuilder:rbac:groups="",namespace=cosign-system,resources=secrets;configmaps,verbs=get

// APISource reads the policy from the API server.
type APISource struct {
	// Policies reads ClusterImagePolicies and TrustRoots, typically the manager's cache.
	Policies client.Reader
	// Refs reads the referenced Secrets and ConfigMaps in SystemNamespace. A direct reader
	// (mgr.GetAPIReader()) avoids caching every Secret of that namespace in the manager;
	// compiled policies are refreshed every re-verification interval, so reads are rare.
	// Nil means Policies.
	Refs client.Reader
	// SystemNamespace defaults to DefaultSystemNamespace.
	SystemNamespace string
}

var _ PolicySource = (*APISource)(nil)

// ClusterImagePolicies implements PolicySource.
func (s *APISource) ClusterImagePolicies(ctx context.Context) ([]pcv1alpha1.ClusterImagePolicy, error) {
	var l pcv1alpha1.ClusterImagePolicyList
	// The verifier never mutates listed objects (it deep-copies before defaulting), so the
	// cache's copy is not needed on this per-verification path.
	if err := s.Policies.List(ctx, &l, client.UnsafeDisableDeepCopy); err != nil {
		if meta.IsNoMatchError(err) {
			// Retried, not "no policy": installing the CRD and a policy must unblock.
			return nil, fmt.Errorf("listing ClusterImagePolicies (is the policy.sigstore.dev CRD installed?): %w", err)
		}
		return nil, fmt.Errorf("listing ClusterImagePolicies: %w", err)
	}
	return l.Items, nil
}

// TrustRoots implements PolicySource. A cluster without the TrustRoot CRD has none.
func (s *APISource) TrustRoots(ctx context.Context) ([]pcv1alpha1.TrustRoot, error) {
	var l pcv1alpha1.TrustRootList
	if err := s.Policies.List(ctx, &l, client.UnsafeDisableDeepCopy); err != nil {
		if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("listing TrustRoots: %w", err)
	}
	return l.Items, nil
}

// Secret implements PolicySource.
func (s *APISource) Secret(ctx context.Context, name string) (*corev1.Secret, error) {
	var o corev1.Secret
	return &o, s.refs().Get(ctx, client.ObjectKey{Namespace: s.namespace(), Name: name}, &o)
}

// ConfigMap implements PolicySource.
func (s *APISource) ConfigMap(ctx context.Context, name string) (*corev1.ConfigMap, error) {
	var o corev1.ConfigMap
	return &o, s.refs().Get(ctx, client.ObjectKey{Namespace: s.namespace(), Name: name}, &o)
}

func (s *APISource) refs() client.Reader {
	if s.Refs != nil {
		return s.Refs
	}
	return s.Policies
}

func (s *APISource) namespace() string {
	if s.SystemNamespace != "" {
		return s.SystemNamespace
	}
	return DefaultSystemNamespace
}

// StaticSource is a fixed policy, for tests and for tools that evaluate files.
type StaticSource struct {
	Policies   []pcv1alpha1.ClusterImagePolicy
	Roots      []pcv1alpha1.TrustRoot
	Secrets    map[string]*corev1.Secret
	ConfigMaps map[string]*corev1.ConfigMap
}

var _ PolicySource = (*StaticSource)(nil)

// ClusterImagePolicies implements PolicySource.
func (s *StaticSource) ClusterImagePolicies(context.Context) ([]pcv1alpha1.ClusterImagePolicy, error) {
	return s.Policies, nil
}

// TrustRoots implements PolicySource.
func (s *StaticSource) TrustRoots(context.Context) ([]pcv1alpha1.TrustRoot, error) {
	return s.Roots, nil
}

// Secret implements PolicySource.
func (s *StaticSource) Secret(_ context.Context, name string) (*corev1.Secret, error) {
	if o, ok := s.Secrets[name]; ok {
		return o, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
}

// ConfigMap implements PolicySource.
func (s *StaticSource) ConfigMap(_ context.Context, name string) (*corev1.ConfigMap, error) {
	if o, ok := s.ConfigMaps[name]; ok {
		return o, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
}

// FromV1beta1 converts a v1beta1 ClusterImagePolicy (the version users usually write) to
// v1alpha1 with policy-controller's own conversion, as its conversion webhook does.
func FromV1beta1(ctx context.Context, in *pcv1beta1.ClusterImagePolicy) (pcv1alpha1.ClusterImagePolicy, error) {
	var out pcv1alpha1.ClusterImagePolicy
	err := out.ConvertFrom(ctx, in.DeepCopy())
	return out, err
}
