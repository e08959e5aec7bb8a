// Package kyverno turns the cluster's ClusterImagePolicies into Kyverno
// ImageValidatingPolicies (policies.kyverno.io/v1) that admit trainenv's pods only when
// their images are pinned by digest and signed by the same keys and keyless identities:
// defense in depth where Kyverno, not policy-controller, guards admission. trainenv's own
// verification stays the source of truth; the generated policy repeats its signature and
// attestation checks at admission, for pods labelled trainenv.io/environment.
package kyverno

import (
	"context"
	"fmt"
	"sort"
	"strings"

	policiesv1 "github.com/kyverno/api/api/policies.kyverno.io/v1"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/trainenv/trainenv/internal/trust/policy"
	"github.com/trainenv/trainenv/internal/workload"
)

const (
	// SourceAnnotation names the ClusterImagePolicy a generated policy was made from.
	SourceAnnotation = "trainenv.io/cluster-image-policy"
	// ManagedByLabel is set to ManagedBy on every generated policy.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	// ManagedBy is the value of ManagedByLabel.
	ManagedBy = "trainenv"
)

// Result is one generated policy and what of its source could not be expressed.
type Result struct {
	Policy *policiesv1.ImageValidatingPolicy
	// Notes list the parts of the ClusterImagePolicy that Kyverno does not check the same
	// way (CUE/Rego predicate policies, KMS keys): trainenv still enforces them.
	Notes []string
}

// Generate returns one ImageValidatingPolicy per ClusterImagePolicy of src, sorted by name.
// A policy that cannot be expressed at all (every authority unsupported) is an error: a
// generated policy must never admit less strictly than the policy it stands for.
func Generate(ctx context.Context, src policy.PolicySource) ([]Result, error) {
	cips, err := src.ClusterImagePolicies(ctx)
	if err != nil {
		return nil, err
	}
	byName, err := trustRoots(ctx, src)
	if err != nil {
		return nil, err
	}
	out := make([]Result, 0, len(cips))
	for i := range cips {
		r, err := generateOne(ctx, src, &cips[i], byName)
		if err != nil {
			return nil, fmt.Errorf("ClusterImagePolicy %s: %w", cips[i].Name, err)
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Policy.Name < out[j].Policy.Name })
	return out, nil
}

// GenerateFor returns the ImageValidatingPolicy of one ClusterImagePolicy, named
// PolicyName(cip.Name), with the same guarantee as Generate.
func GenerateFor(ctx context.Context, src policy.PolicySource, cip *pcv1alpha1.ClusterImagePolicy) (Result, error) {
	roots, err := trustRoots(ctx, src)
	if err != nil {
		return Result{}, err
	}
	return generateOne(ctx, src, cip, roots)
}

// PolicyName is the name of the ImageValidatingPolicy generated from a ClusterImagePolicy.
func PolicyName(clusterImagePolicy string) string { return "trainenv-" + clusterImagePolicy }

func trustRoots(ctx context.Context, src policy.PolicySource) (map[string]*pcv1alpha1.TrustRoot, error) {
	roots, err := src.TrustRoots(ctx)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]*pcv1alpha1.TrustRoot, len(roots))
	for i := range roots {
		byName[roots[i].Name] = &roots[i]
	}
	return byName, nil
}

func generateOne(ctx context.Context, src policy.PolicySource, cip *pcv1alpha1.ClusterImagePolicy, roots map[string]*pcv1alpha1.TrustRoot) (Result, error) {
	spec := cip.Spec
	ivp := &policiesv1.ImageValidatingPolicy{
		TypeMeta: metav1.TypeMeta{APIVersion: policiesv1.GroupVersion.String(), Kind: "ImageValidatingPolicy"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        PolicyName(cip.Name),
			Labels:      map[string]string{ManagedByLabel: ManagedBy},
			Annotations: map[string]string{SourceAnnotation: cip.Name},
		},
	}
	s := &ivp.Spec
	s.MatchConstraints = trainenvPods()
	s.FailurePolicy = ptr.To(admissionregistrationv1.Fail)
	s.ValidationAction = []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}
	if spec.Mode == "warn" {
		s.ValidationAction = []admissionregistrationv1.ValidationAction{admissionregistrationv1.Warn, admissionregistrationv1.Audit}
	}
	for _, img := range spec.Images {
		s.MatchImageReferences = append(s.MatchImageReferences, policiesv1.MatchImageReference{Glob: img.Glob})
	}
	// Never rewrite the pod (trainenv already pinned it); require a digest and a verdict.
	s.ValidationConfigurations.MutateDigest = ptr.To(false)
	s.ValidationConfigurations.VerifyDigest = ptr.To(true)
	s.ValidationConfigurations.Required = ptr.To(true)

	var res Result
	var passes []string
	for _, a := range spec.Authorities {
		expr, notes, err := authority(ctx, src, s, a, roots)
		if err != nil {
			return Result{}, fmt.Errorf("authority %s: %w", a.Name, err)
		}
		res.Notes = append(res.Notes, notes...)
		passes = append(passes, expr)
	}
	if spec.Policy != nil {
		res.Notes = append(res.Notes, "the policy-level "+spec.Policy.Type+" policy is checked by trainenv only")
	}
	s.Validations = []admissionregistrationv1.Validation{
		{
			Expression: pinnedExpression,
			Message:    "trainenv pods run images pinned by digest (repository@sha256:...)",
		},
		{
			Expression: "images.containers.map(image, " + strings.Join(passes, " || ") + ").all(ok, ok)",
			Message:    fmt.Sprintf("the image is not verified by ClusterImagePolicy %s (signature or attestation missing, or by an untrusted signer)", cip.Name),
		},
	}
	res.Policy = ivp
	return res, nil
}

// pinnedExpression holds for a pod whose every container and init container names its
// image by digest.
const pinnedExpression = `object.spec.containers.all(c, c.image.contains('@sha256:')) && ` +
	`(!has(object.spec.initContainers) || object.spec.initContainers.all(c, c.image.contains('@sha256:')))`

// trainenvPods selects the pods trainenv creates (by its environment label).
func trainenvPods() *admissionregistrationv1.MatchResources {
	return &admissionregistrationv1.MatchResources{
		ObjectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: workload.LabelEnvironment, Operator: metav1.LabelSelectorOpExists},
		}},
		ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
			RuleWithOperations: admissionregistrationv1.RuleWithOperations{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"},
				},
			},
		}},
	}
}
