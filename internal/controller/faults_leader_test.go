package controller_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/trainenv/trainenv/internal/controller"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
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
