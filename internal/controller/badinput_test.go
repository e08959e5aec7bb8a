package controller_test

import (
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/badinput"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/trust"
	"github.com/trainenv/trainenv/internal/trust/policy"
)

// TestBadInputSeenAsConditions: what the API server cannot check (the content of Secrets
// and of ClusterImagePolicies that the schema accepts) is reported on the environment as a
// condition, with a stable reason and a message naming the fault; no workload is created
// and nothing panics. docs/bad-input.md records each exact message (namespace and registry
// address replaced by NS and REGISTRY).
func TestBadInputSeenAsConditions(t *testing.T) {
	f := newFixture(t)
	reg := registrytest.New(t)
	reg.Push("team/pytorch", "2.4", registrytest.Image(t))
	f.gpuNode("bad-a100")
	image := reg.Host + "/team/pytorch:2.4"
	verifier := policy.New(&policy.APISource{Policies: k8s, Refs: k8s}, policy.Options{})
	ssh := func(key string) func(*trainenvv1.TrainingEnvironment) {
		return func(te *trainenvv1.TrainingEnvironment) {
			te.Spec.SSH = &trainenvv1.SSHSpec{Enabled: true, AuthorizedKeysSecretRef: &trainenvv1.SecretKeyReference{Name: te.Name + "-keys", Key: key}}
		}
	}
	key := strings.TrimSpace(authorizedKey(t))
	keyPolicy := func(a pcv1alpha1.Authority, glob string) *pcv1alpha1.ClusterImagePolicy {
		return &pcv1alpha1.ClusterImagePolicy{Spec: pcv1alpha1.ClusterImagePolicySpec{
			Images: []pcv1alpha1.ImagePattern{{Glob: glob}}, Authorities: []pcv1alpha1.Authority{a}}}
	}
	glob := reg.Host + "/team/**"
	cases := []struct {
		input     string
		secret    map[string]string // the environment's NAME-keys Secret
		policy    *pcv1alpha1.ClusterImagePolicy
		mutate    func(*trainenvv1.TrainingEnvironment)
		condition string
		reason    string
	}{
		{"authorized_keys Secret missing", nil, nil, ssh(""), trainenvv1.ConditionWorkloadReady, trainenvv1.ReasonAuthorizedKeysNotFound},
		{"authorized_keys Secret without the key", map[string]string{"id_ed25519.pub": key}, nil, ssh(""), trainenvv1.ConditionWorkloadReady, trainenvv1.ReasonAuthorizedKeysNotFound},
		{"authorized_keys with a truncated key", map[string]string{"authorized_keys": key[:40]}, nil, ssh(""), trainenvv1.ConditionWorkloadReady, trainenvv1.ReasonInvalidAuthorizedKeys},
		{"authorized_keys holding a private key", map[string]string{"authorized_keys": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"}, nil, ssh(""), trainenvv1.ConditionWorkloadReady, trainenvv1.ReasonInvalidAuthorizedKeys},
		{"authorized_keys with only comments", map[string]string{"authorized_keys": "# alice\n\n"}, nil, ssh(""), trainenvv1.ConditionWorkloadReady, trainenvv1.ReasonInvalidAuthorizedKeys},
		{"authorized_keys with a good and a bad line", map[string]string{"authorized_keys": key + "\nssh-rsa AAAA== bob\n"}, nil, ssh(""), trainenvv1.ConditionWorkloadReady, trainenvv1.ReasonInvalidAuthorizedKeys},
		{"Jupyter token Secret missing", nil, nil, func(te *trainenvv1.TrainingEnvironment) {
			te.Spec.Jupyter = &trainenvv1.JupyterSpec{Enabled: true, TokenSecretRef: &trainenvv1.SecretKeyReference{Name: te.Name + "-keys"}}
		}, trainenvv1.ConditionWorkloadReady, trainenvv1.ReasonJupyterTokenNotFound},
		{"pull Secret missing", nil, nil, func(te *trainenvv1.TrainingEnvironment) {
			te.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: te.Name + "-keys"}}
		}, trainenvv1.ConditionImageResolved, trainenvv1.ReasonPullSecretNotFound},
		{"ClusterImagePolicy key that is not a PEM public key", nil, keyPolicy(pcv1alpha1.Authority{Name: "release", Key: &pcv1alpha1.KeyRef{Data: "ssh-ed25519 AAAA"}}, glob), nil,
			trainenvv1.ConditionVerified, "InvalidPolicy"},
		{"ClusterImagePolicy authority without key or keyless", nil, keyPolicy(pcv1alpha1.Authority{Name: "empty"}, glob), nil, trainenvv1.ConditionVerified, "InvalidPolicy"},
		{"ClusterImagePolicy keyless without identities", nil, keyPolicy(pcv1alpha1.Authority{Name: "ci", Keyless: &pcv1alpha1.KeylessRef{URL: nil}}, glob), nil,
			trainenvv1.ConditionVerified, "InvalidPolicy"},
		{"ClusterImagePolicy key Secret missing", nil, keyPolicy(pcv1alpha1.Authority{Name: "release", Key: &pcv1alpha1.KeyRef{SecretRef: &corev1.SecretReference{Name: "absent"}}}, glob), nil,
			trainenvv1.ConditionVerified, "InvalidPolicy"},
		{"ClusterImagePolicy glob with a character class", nil, keyPolicy(pcv1alpha1.Authority{Name: "release", Key: &pcv1alpha1.KeyRef{Data: publicKeyPEM(t)}}, reg.Host+"/team/[a-z]*"), nil,
			trainenvv1.ConditionVerified, "InvalidPolicy"},
	}
	var rows []badinput.Row
	for i, tc := range cases {
		t.Run(tc.input, func(t *testing.T) {
			g := NewWithT(t)
			name := fmt.Sprintf("bad-%d", i+1)
			if tc.secret != nil {
				f.putSecret(name+"-keys", tc.secret)
			}
			// Secrets are checked after verification: let every image pass for them.
			f.r.Verifier = trust.NotEnforced{}
			if tc.policy != nil {
				tc.policy.Name = name + "-" + f.ns
				create(t, tc.policy)
				f.r.Verifier = verifier
			}
			mutate := tc.mutate
			if mutate == nil {
				mutate = func(*trainenvv1.TrainingEnvironment) {}
			}
			te := f.create(name, image, mutate)
			_, _, te = f.reconcile(te) // errors are retried; the condition is what the user sees
			c := condition(te, tc.condition)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).NotTo(Equal(metav1.ConditionTrue))
			g.Expect(c.Reason).To(Equal(tc.reason), c.Message)
			_, err := f.statefulSet(te)
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "no workload")
			msg := strings.NewReplacer(f.ns, "NS", reg.Host, "REGISTRY").Replace(c.Message)
			rows = append(rows, badinput.Row{Input: tc.input, Where: "`" + tc.condition + "` = " + string(c.Status) + ", reason `" + c.Reason + "`", Message: msg})
		})
	}
	badinput.Check(t, "Conditions", "bad Secret or policy", rows)
}
