package controller_test

import (
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/controller"
	"github.com/trainenv/trainenv/internal/testutil/gen"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/workload"
)

// Two replicas with leader election (short leases, as production's are 15 s): only the
// leader writes; when it dies without releasing its lease (a crash, not a clean shutdown),
// the other takes over once the lease has expired and carries on.
func TestLeaderElectionOnlyTheLeaderWritesAndFailsOver(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	reg := registrytest.New(t)
	reg.Push("team/pytorch", "2.4", registrytest.Image(t))
	f.gpuNode("leader-a100")
	const lease = 2 * time.Second
	elect := func(o *ctrl.Options, _ *controller.TrainingEnvironmentReconciler) {
		o.LeaderElection = true
		o.LeaderElectionID = "trainenv-test-" + f.ns
		o.LeaderElectionNamespace = f.ns
		o.LeaseDuration = ptr.To(lease)
		o.RenewDeadline = ptr.To(1500 * time.Millisecond)
		o.RetryPeriod = ptr.To(250 * time.Millisecond)
		o.LeaderElectionReleaseOnCancel = false
	}

	first := startManager(t, f.ns, elect)
	g.Eventually(first.mgr.Elected(), 20*time.Second).Should(BeClosed())
	second := startManager(t, f.ns, elect)
	g.Consistently(second.mgr.Elected(), lease+time.Second).ShouldNot(BeClosed(), "one leader at a time")

	a := f.create("leader-a", reg.Host+"/team/pytorch:2.4")
	g.Eventually(func() error { _, err := f.statefulSet(a); return err }, 20*time.Second, 100*time.Millisecond).Should(Succeed())
	g.Expect(first.client.Writes()).To(BeNumerically(">", 0))
	g.Expect(second.client.Writes()).To(BeZero(), "a follower writes nothing")

	// The leader crashes: it stops renewing and does not release the lease.
	first.stop()
	crashed, firstWrites := time.Now(), first.client.Writes()
	g.Eventually(second.mgr.Elected(), 3*lease).Should(BeClosed())
	failover := time.Since(crashed)
	t.Logf("failover after %s (lease %s)", failover.Round(10*time.Millisecond), lease)
	g.Expect(failover).To(BeNumerically("<=", lease+1500*time.Millisecond), "taken over once the lease expired (plus a retry period)")

	b := f.create("leader-b", reg.Host+"/team/pytorch:2.4")
	g.Eventually(func() error { _, err := f.statefulSet(b); return err }, 20*time.Second, 100*time.Millisecond).Should(Succeed())
	g.Expect(second.client.Writes()).To(BeNumerically(">", 0))
	g.Expect(first.client.Writes()).To(Equal(firstWrites), "the old leader wrote nothing after it stopped")
}

// The leader killed mid-way through a batch of environments (its process dies after a
// create, in the middle of a pass, then its pod is gone without releasing the lease): the
// follower takes over and finishes the batch. Every environment ends with exactly one
// workspace claim, one StatefulSet and one NetworkPolicy; every claim the old leader created
// is the same claim afterwards (same UID: no workspace lost or replaced); the old leader
// writes nothing more.
func TestLeaderKilledMidBatchNewLeaderFinishes(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	reg := registrytest.New(t)
	reg.Push("team/pytorch", "2.4", registrytest.Image(t))
	f.gpuNode("batch-a100", gen.WithGPUs(64))
	const lease = 2 * time.Second
	elect := func(o *ctrl.Options, _ *controller.TrainingEnvironmentReconciler) {
		o.LeaderElection = true
		o.LeaderElectionID = "trainenv-test-" + f.ns
		o.LeaderElectionNamespace = f.ns
		o.LeaseDuration = ptr.To(lease)
		o.RenewDeadline = ptr.To(1500 * time.Millisecond)
		o.RetryPeriod = ptr.To(250 * time.Millisecond)
		o.LeaderElectionReleaseOnCancel = false
	}
	first := startManager(t, f.ns, elect)
	g.Eventually(first.mgr.Elected(), 20*time.Second).Should(BeClosed())
	second := startManager(t, f.ns, elect)

	// A first pass creates 3 objects per environment, the claim first: die half-way through
	// the batch, right after a claim, in the middle of that environment's pass.
	const batch = 12
	first.client.mu.Lock()
	first.client.dieAfterCreates = batch*3/2 + 1
	first.client.mu.Unlock()
	envs := make([]*trainenvv1.TrainingEnvironment, batch)
	for i := range envs {
		envs[i] = f.create(fmt.Sprintf("batch-%02d", i), reg.Host+"/team/pytorch:2.4")
	}
	g.Eventually(first.client.alive, 30*time.Second, 50*time.Millisecond).Should(MatchError(errKilled))
	first.stop()
	killedWrites := first.client.Writes()
	claimsBefore := claimUIDs(t, f)
	t.Logf("killed after %d creates: %d of %d workspace claims existed", len(first.client.created), len(claimsBefore), batch)
	g.Expect(len(claimsBefore)).To(BeNumerically("<", batch), "the kill came before the batch was done")
	var setsBefore appsv1.StatefulSetList
	g.Expect(k8s.List(f.ctx, &setsBefore, client.InNamespace(f.ns))).To(Succeed())
	g.Expect(len(setsBefore.Items)).To(BeNumerically("<", len(claimsBefore)), "an environment was left with its claim and no workload")
	g.Expect(second.client.Writes()).To(BeZero(), "the follower wrote nothing while the leader lived")

	g.Eventually(second.mgr.Elected(), 3*lease).Should(BeClosed())
	for _, te := range envs {
		g.Eventually(func(g Gomega) {
			got := f.get(te)
			g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
			g.Expect(names(ownedObjects(t, f, got))).To(Equal([]string{
				"NetworkPolicy/" + te.Name, "PersistentVolumeClaim/" + workload.WorkspaceClaim(got).Name, "StatefulSet/" + te.Name,
			}), "one of each, nothing else")
		}, 60*time.Second, 200*time.Millisecond).Should(Succeed(), te.Name)
	}
	claimsAfter := claimUIDs(t, f)
	g.Expect(claimsAfter).To(HaveLen(batch))
	for name, uid := range claimsBefore {
		g.Expect(claimsAfter).To(HaveKeyWithValue(name, uid), "claim %s created by the old leader is kept, not replaced", name)
	}
	var sets appsv1.StatefulSetList
	g.Expect(k8s.List(f.ctx, &sets, client.InNamespace(f.ns))).To(Succeed())
	g.Expect(sets.Items).To(HaveLen(batch), "no duplicate StatefulSet")
	g.Expect(first.client.Writes()).To(Equal(killedWrites), "the old leader wrote nothing after it died")
}

// claimUIDs maps the namespace's workspace claims to their UIDs.
func claimUIDs(t *testing.T, f *fixture) map[string]types.UID {
	t.Helper()
	var claims corev1.PersistentVolumeClaimList
	if err := k8s.List(f.ctx, &claims, client.InNamespace(f.ns)); err != nil {
		t.Fatal(err)
	}
	out := map[string]types.UID{}
	for _, c := range claims.Items {
		out[c.Name] = c.UID
	}
	return out
}
