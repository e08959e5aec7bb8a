package policy

import (
	"testing"

	. "github.com/onsi/gomega"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"knative.dev/pkg/apis"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/trust"
)

// TestAPISource reads the policy, and the Secret its key lives in, through a
// controller-runtime client with the scheme the manager needs.
func TestAPISource(t *testing.T) {
	g := NewWithT(t)
	reg := registrytest.New(t)
	release := newSigner(t)
	img := push(t, reg, "team/app")
	release.sign(t, img)

	scheme := runtime.NewScheme()
	g.Expect(corev1.AddToScheme(scheme)).To(Succeed())
	g.Expect(pcv1alpha1.AddToScheme(scheme)).To(Succeed())
	p := keyPolicy("release", reg.Host+"/team/*", "")
	p.Spec.Authorities[0].Key = &pcv1alpha1.KeyRef{SecretRef: &corev1.SecretReference{Name: "release-key"}}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: DefaultSystemNamespace, Name: "release-key"},
		Data:       map[string][]byte{"cosign.pub": []byte(release.publicPEM)},
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(&p, secret).Build()

	v := New(&APISource{Policies: c}, Options{})
	got, err := v.Verify(bg, trust.Request{Image: img})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.Reason).To(Equal(trainenvv1.ReasonVerified), got.Message)
	g.Expect(got.Policies).To(Equal([]string{"release"}))
}

// TestMissingTrustRoot: a keyless authority naming a TrustRoot that does not exist makes
// the policy invalid, and the image fails closed, without any registry request.
func TestMissingTrustRoot(t *testing.T) {
	g := NewWithT(t)
	reg := registrytest.New(t)
	img := push(t, reg, "team/app")
	p := keyPolicy("keyless", reg.Host+"/team/*", "")
	p.Spec.Authorities[0].Key = nil
	p.Spec.Authorities[0].Keyless = &pcv1alpha1.KeylessRef{
		URL:          apis.HTTPS("fulcio.internal.example"),
		TrustRootRef: "private-sigstore",
		Identities:   []pcv1alpha1.Identity{{Issuer: "https://issuer.example", Subject: "ci@example.com"}},
	}
	reg.Requests()

	got, err := New(&StaticSource{Policies: pl(p)}, Options{}).Verify(bg, trust.Request{Image: img})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.Reason).To(Equal(trainenvv1.ReasonInvalidPolicy), got.Message)
	g.Expect(got.Message).To(ContainSubstring("TrustRoot private-sigstore does not exist"))
	g.Expect(reg.Requests()).To(BeEmpty())
}
