package controller_test

import (
	"fmt"
	"sort"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/controller"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/trust"
	"github.com/trainenv/trainenv/internal/workload"
)

// The operator killed between two creates of its first pass, at every point: after a
// restart (a new reconciler, nothing in memory) the environment has exactly one of each
// object, all owned by it, none left over, the generated Secrets created before the kill
// kept as they were, and the same status as an environment that never crashed.
func TestKilledBetweenCreatesRecoversWithoutDuplicatesOrOrphans(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	reg := registrytest.New(t)
	reg.Push("team/pytorch", "2.4", registrytest.Image(t))
	f.gpuNode("crash-a100")
	f.putSecret("keys", map[string]string{"authorized_keys": authorizedKey(t)})
	image := reg.Host + "/team/pytorch:2.4"
	access := func(te *trainenvv1.TrainingEnvironment) {
		te.Spec.Jupyter = &trainenvv1.JupyterSpec{Enabled: true}
		te.Spec.SSH = &trainenvv1.SSHSpec{Enabled: true, AuthorizedKeysSecretRef: &trainenvv1.SecretKeyReference{Name: "keys"}}
	}
	reconciler := func(c *hookedClient) *controller.TrainingEnvironmentReconciler {
		return &controller.TrainingEnvironmentReconciler{Client: c, APIReader: c.apiReader(), Resolver: f.r.Resolver,
			Verifier: trust.NotEnforced{}, Clock: f.clock, ToolsImage: testToolsImage}
	}

	// A pass that is never interrupted: what it creates, and the status it reaches.
	clean := f.create("clean", image, access)
	counted := &hookedClient{Client: k8s, reader: k8s}
	_, err := reconciler(counted).Reconcile(f.ctx, reconcileRequest(clean))
	g.Expect(err).NotTo(HaveOccurred())
	clean = f.get(clean)
	t.Logf("a first pass creates, in order: %v", counted.created)
	g.Expect(counted.created).To(HaveLen(5), "claim, NetworkPolicy, 2 Secrets, StatefulSet")

	for n := 1; n <= len(counted.created); n++ {
		t.Run(fmt.Sprintf("killed after create %d (%s)", n, counted.created[n-1]), func(t *testing.T) {
			g := NewWithT(t)
			te := f.create(fmt.Sprintf("crash-%d", n), image, access)
			dying := &hookedClient{Client: k8s, reader: k8s, dieAfterCreates: n}
			_, err := reconciler(dying).Reconcile(f.ctx, reconcileRequest(te))
			g.Expect(err).To(MatchError(errKilled))
			before := ownedObjects(t, f, f.get(te))
			// The workload objects are written concurrently: creates already in flight when
			// the process died may land too, as they would on a real crash.
			g.Expect(len(dying.created)).To(BeNumerically(">=", n))
			g.Expect(before).To(HaveLen(len(dying.created)), "the kill left exactly what was created")

			restarted := reconciler(&hookedClient{Client: k8s, reader: k8s})
			for range 3 {
				_, err = restarted.Reconcile(f.ctx, reconcileRequest(te))
				g.Expect(err).NotTo(HaveOccurred())
			}
			te = f.get(te)
			after := ownedObjects(t, f, te)
			g.Expect(names(after)).To(Equal(renamed(names(ownedObjects(t, f, clean)), clean.Name, te.Name)), "one of each, nothing else")
			for key, rv := range before {
				if key.kind == "Secret" {
					g.Expect(after[key]).To(Equal(rv), "%s created before the kill is kept, not regenerated", key.name)
				}
			}
			g.Expect(te.Status.Phase).To(Equal(clean.Status.Phase))
			g.Expect(reasons(te)).To(Equal(reasons(clean)))
			g.Expect(te.Status.ObservedGeneration).To(Equal(te.Generation))
		})
	}
}

type objectKey struct{ kind, name string }

// ownedObjects lists what belongs to te in its namespace (labelled with its name or
// controlled by it), with resource versions.
func ownedObjects(t *testing.T, f *fixture, te *trainenvv1.TrainingEnvironment) map[objectKey]string {
	t.Helper()
	out := map[objectKey]string{}
	lists := map[string]client.ObjectList{
		"StatefulSet": &appsv1.StatefulSetList{}, "Service": &corev1.ServiceList{}, "NetworkPolicy": &networkingv1.NetworkPolicyList{},
		"PersistentVolumeClaim": &corev1.PersistentVolumeClaimList{}, "Secret": &corev1.SecretList{},
	}
	for kind, list := range lists {
		if err := k8s.List(f.ctx, list, client.InNamespace(f.ns)); err != nil {
			t.Fatal(err)
		}
		items, err := metaItems(list)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range items {
			if o.GetLabels()[workload.LabelEnvironment] == te.Name || metav1.IsControlledBy(o, te) {
				if !metav1.IsControlledBy(o, te) && kind != "PersistentVolumeClaim" {
					t.Errorf("%s %s is not controlled by %s: an orphan", kind, o.GetName(), te.Name)
				}
				out[objectKey{kind, o.GetName()}] = o.GetResourceVersion()
			}
		}
	}
	return out
}

// metaItems returns the items of a typed list.
func metaItems(list client.ObjectList) ([]metav1.Object, error) {
	objs, err := meta.ExtractList(list)
	if err != nil {
		return nil, err
	}
	out := make([]metav1.Object, 0, len(objs))
	for _, o := range objs {
		m, err := meta.Accessor(o)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func names(objects map[objectKey]string) []string {
	var out []string
	for k := range objects {
		out = append(out, k.kind+"/"+k.name)
	}
	sort.Strings(out)
	return out
}

func renamed(in []string, from, to string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		kind, name, _ := cutSlash(s)
		out[i] = kind + "/" + to + name[len(from):]
	}
	sort.Strings(out)
	return out
}

func cutSlash(s string) (string, string, bool) {
	for i := range s {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func reasons(te *trainenvv1.TrainingEnvironment) map[string]string {
	out := map[string]string{}
	for _, c := range te.Status.Conditions {
		out[c.Type] = string(c.Status) + "/" + c.Reason
	}
	return out
}
