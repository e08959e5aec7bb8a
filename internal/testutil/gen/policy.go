package gen

import (
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ClusterImagePolicyModifier edits a ClusterImagePolicy being built.
type ClusterImagePolicyModifier func(*pcv1alpha1.ClusterImagePolicy)

// ClusterImagePolicy returns a policy named name, edited by mods in order.
func ClusterImagePolicy(name string, mods ...ClusterImagePolicyModifier) *pcv1alpha1.ClusterImagePolicy {
	p := &pcv1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, m := range mods {
		m(p)
	}
	return p
}

// ForImages adds image globs the policy covers.
func ForImages(globs ...string) ClusterImagePolicyModifier {
	return func(p *pcv1alpha1.ClusterImagePolicy) {
		for _, g := range globs {
			p.Spec.Images = append(p.Spec.Images, pcv1alpha1.ImagePattern{Glob: g})
		}
	}
}

// WithAuthority adds an authority.
func WithAuthority(a pcv1alpha1.Authority) ClusterImagePolicyModifier {
	return func(p *pcv1alpha1.ClusterImagePolicy) { p.Spec.Authorities = append(p.Spec.Authorities, a) }
}

// WithKey adds an authority named name trusting the PEM public key.
func WithKey(name, publicPEM string) ClusterImagePolicyModifier {
	return WithAuthority(pcv1alpha1.Authority{Name: name, Key: &pcv1alpha1.KeyRef{Data: publicPEM}})
}

// WithMode sets spec.mode ("enforce" or "warn").
func WithMode(mode string) ClusterImagePolicyModifier {
	return func(p *pcv1alpha1.ClusterImagePolicy) { p.Spec.Mode = mode }
}

// AsStored gives the policy the UID ("uid-NAME") and generation 1 an API server would,
// for code that keys caches on them without one.
func AsStored() ClusterImagePolicyModifier {
	return func(p *pcv1alpha1.ClusterImagePolicy) {
		p.UID, p.Generation = types.UID("uid-"+p.Name), 1
	}
}

// WithAuthorities sets spec.authorities to as.
func WithAuthorities(as ...pcv1alpha1.Authority) ClusterImagePolicyModifier {
	return func(p *pcv1alpha1.ClusterImagePolicy) { p.Spec.Authorities = as }
}
