package kyverno

import (
	"context"
	"fmt"
	"strings"

	policiesv1 "github.com/kyverno/api/api/policies.kyverno.io/v1"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/trainenv/trainenv/internal/trust/policy"
)

// SelfTrustName names the ClusterImagePolicy and the Kyverno ImageValidatingPolicy that
// trust trainenv's own images.
const SelfTrustName = "trainenv-self"

// SelfTrust says where trainenv's own images (manager, node agent, tools) live and who
// signs them: the release key or CI identity for releases, the per-cluster key that
// `make images` generates for a development cluster.
type SelfTrust struct {
	// Images are globs of trainenv's image repositories, e.g. registry.example.com/trainenv/**.
	Images []string
	// PublicKey is the PEM of the signing key (key authority)...
	PublicKey string
	// ... or Issuer and Subject (or SubjectRegExp) the keyless identity of the release
	// workflow, with TrustRootRef naming a TrustRoot (empty: public Sigstore).
	Issuer, Subject, SubjectRegExp, TrustRootRef string
}

// SelfTrustPolicies returns the ClusterImagePolicy and the Kyverno ImageValidatingPolicy
// that trust trainenv's own images, so that an admission controller (policy-controller or
// Kyverno) guarding the namespaces where trainenv runs pods admits them: the manager and
// node agent pods, and the tools image that every environment's pod runs as its init
// container. trainenv's own verifier uses the ClusterImagePolicy like any other.
//
// The Kyverno policy covers every pod (not only environments', as the generated policies
// do), checks containers and init containers whose images match Images, and asks for a
// digest: an environment's pod that carries an unsigned tools image is denied, as is a
// manager started from an unsigned build.
func SelfTrustPolicies(ctx context.Context, st SelfTrust) (*pcv1alpha1.ClusterImagePolicy, *policiesv1.ImageValidatingPolicy, error) {
	if len(st.Images) == 0 {
		return nil, nil, fmt.Errorf("no image globs for trainenv's own images")
	}
	a := pcv1alpha1.Authority{Name: "trainenv-release"}
	switch {
	case st.PublicKey != "" && st.Issuer == "":
		a.Key = &pcv1alpha1.KeyRef{Data: st.PublicKey}
	case st.PublicKey == "" && st.Issuer != "" && (st.Subject != "") != (st.SubjectRegExp != ""):
		a.Keyless = &pcv1alpha1.KeylessRef{TrustRootRef: st.TrustRootRef,
			Identities: []pcv1alpha1.Identity{{Issuer: st.Issuer, Subject: st.Subject, SubjectRegExp: st.SubjectRegExp}}}
	default:
		return nil, nil, fmt.Errorf("trainenv's signer is either a public key or a keyless issuer with one subject or subject pattern")
	}
	cip := &pcv1alpha1.ClusterImagePolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: pcv1alpha1.SchemeGroupVersion.String(), Kind: "ClusterImagePolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: SelfTrustName, Labels: map[string]string{ManagedByLabel: ManagedBy}},
		Spec:       pcv1alpha1.ClusterImagePolicySpec{Authorities: []pcv1alpha1.Authority{a}},
	}
	for _, g := range st.Images {
		cip.Spec.Images = append(cip.Spec.Images, pcv1alpha1.ImagePattern{Glob: g})
	}
	// The same attestor the generated policies use for a ClusterImagePolicy authority.
	res, err := GenerateFor(ctx, &policy.StaticSource{}, cip)
	if err != nil {
		return nil, nil, err
	}
	ivp := res.Policy
	ivp.Name = SelfTrustName
	ivp.Annotations = nil
	ivp.Spec.MatchConstraints = allPods()
	who := fmt.Sprintf("verifyImageSignatures(image, [attestors[%q]]) > 0", a.Name)
	list := func(kind string) string {
		return fmt.Sprintf("(%q in images ? images.%s : [])", kind, kind)
	}
	ivp.Spec.Validations = []admissionregistrationv1.Validation{
		{
			Expression: list("containers") + ".all(image, image.contains('@sha256:')) && " + list("initContainers") + ".all(image, image.contains('@sha256:'))",
			Message:    "trainenv's own images run pinned by digest (repository@sha256:...)",
		},
		{
			Expression: strings.Join([]string{list("containers") + ".all(image, " + who + ")", list("initContainers") + ".all(image, " + who + ")"}, " && "),
			Message:    "trainenv's own image (manager, node agent or tools) is not signed by trainenv's release signer (ClusterImagePolicy " + SelfTrustName + ")",
		},
	}
	// Pods that run none of trainenv's images are not this policy's business.
	ivp.Spec.FailurePolicy = ptr.To(admissionregistrationv1.Fail)
	return cip, ivp, nil
}

// allPods selects every pod created or updated.
func allPods() *admissionregistrationv1.MatchResources {
	return &admissionregistrationv1.MatchResources{
		ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
			RuleWithOperations: admissionregistrationv1.RuleWithOperations{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			},
		}},
	}
}
