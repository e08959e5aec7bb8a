package policy

import (
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	corev1 "k8s.io/api/core/v1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/trust"
)

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)} }

type fixture struct {
	reg     *registrytest.Registry
	release signer
	other   signer
	clock   *clock
	src     *StaticSource
	v       *Verifier
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{reg: registrytest.New(t), release: newSigner(t), other: newSigner(t), clock: newClock()}
	f.src = &StaticSource{Policies: pl(keyPolicy("release", f.reg.Host+"/team/*", f.release.publicPEM))}
	f.v = New(f.src, Options{Now: f.clock.Now})
	return f
}

func (f *fixture) verify(t *testing.T, img string) trust.Verdict {
	t.Helper()
	got, err := f.v.Verify(bg, trust.Request{Image: img, Namespace: "ns"})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestCacheHitMakesNoRegistryRequests(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	img := push(t, f.reg, "team/app")
	f.release.sign(t, img)
	f.reg.Requests()

	first := f.verify(t, img)
	g.Expect(first.Reason).To(Equal(trainenvv1.ReasonVerified), first.Message)
	g.Expect(f.reg.Requests()).NotTo(BeEmpty())

	second := f.verify(t, img)
	g.Expect(f.reg.Requests()).To(BeEmpty())
	g.Expect(second).To(Equal(first)) // including CheckedAt: the verdict says when it was checked

	// The re-verification interval ends the reuse.
	f.clock.Advance(10*time.Minute + time.Second)
	g.Expect(f.verify(t, img).Reason).To(Equal(trainenvv1.ReasonVerified))
	g.Expect(f.reg.Requests()).NotTo(BeEmpty())
}

func TestCacheNeverSkipsAPolicyChange(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	img := push(t, f.reg, "team/app")
	f.release.sign(t, img)
	g.Expect(f.verify(t, img).Reason).To(Equal(trainenvv1.ReasonVerified))

	// The platform team switches the policy to another key: the apiserver bumps the
	// generation, and the cached verdict no longer applies.
	p := keyPolicy("release", f.reg.Host+"/team/*", f.other.publicPEM)
	p.Generation = 2
	f.src.Policies = pl(p)
	f.reg.Requests()
	got := f.verify(t, img)
	g.Expect(got.Reason).To(Equal(trainenvv1.ReasonUntrustedSigner), got.Message)
	g.Expect(f.reg.Requests()).NotTo(BeEmpty())

	// A new matching policy joins the key too.
	f.src.Policies = pl(keyPolicy("release", f.reg.Host+"/team/*", f.release.publicPEM),
		provenancePolicy("provenance", f.reg.Host+"/team/*", f.release.publicPEM, trustedBuilder))
	got = f.verify(t, img)
	g.Expect(got.Reason).To(Equal(trainenvv1.ReasonAttestationMissing), got.Message)
}

func TestFailuresAreCachedBriefly(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	img := push(t, f.reg, "team/app")
	g.Expect(f.verify(t, img).Reason).To(Equal(trainenvv1.ReasonNoSignature))

	// Signed seconds after the push, as CI does: within FailureTTL the failure is reused ...
	f.release.sign(t, img)
	f.reg.Requests()
	g.Expect(f.verify(t, img).Reason).To(Equal(trainenvv1.ReasonNoSignature))
	g.Expect(f.reg.Requests()).To(BeEmpty())

	// ... and then the signature is seen.
	f.clock.Advance(31 * time.Second)
	g.Expect(f.verify(t, img).Reason).To(Equal(trainenvv1.ReasonVerified))
}

func TestConcurrentVerificationsShareOne(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	one, many := push(t, f.reg, "team/one"), push(t, f.reg, "team/many")
	f.release.sign(t, one)
	f.release.sign(t, many)

	f.reg.Requests()
	f.verify(t, one)
	perVerification := len(f.reg.Requests())
	g.Expect(perVerification).To(BeNumerically(">", 0))

	const n = 32
	start := make(chan struct{})
	var wg sync.WaitGroup
	verdicts := make([]trust.Verdict, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			verdicts[i] = f.verify(t, many)
		}()
	}
	close(start)
	wg.Wait()
	g.Expect(f.reg.Requests()).To(HaveLen(perVerification))
	for _, v := range verdicts {
		g.Expect(v.Reason).To(Equal(trainenvv1.ReasonVerified))
	}
}

// TestSecretKeyRotation: a key referenced through a Secret is re-read every
// re-verification interval, and a rotated key changes the cache key.
func TestSecretKeyRotation(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	img := push(t, f.reg, "team/app")
	f.release.sign(t, img)
	p := keyPolicy("release", f.reg.Host+"/team/*", "")
	p.Spec.Authorities[0].Key = &pcv1alpha1.KeyRef{SecretRef: &corev1.SecretReference{Name: "release-key"}}
	f.src.Policies = pl(p)
	f.src.Secrets = map[string]*corev1.Secret{"release-key": {Data: map[string][]byte{"cosign.pub": []byte(f.release.publicPEM)}}}
	g.Expect(f.verify(t, img).Reason).To(Equal(trainenvv1.ReasonVerified))

	f.src.Secrets["release-key"] = &corev1.Secret{Data: map[string][]byte{"cosign.pub": []byte(f.other.publicPEM)}}
	f.clock.Advance(10*time.Minute + time.Second)
	g.Expect(f.verify(t, img).Reason).To(Equal(trainenvv1.ReasonUntrustedSigner))

	delete(f.src.Secrets, "release-key")
	f.clock.Advance(10*time.Minute + time.Second)
	got := f.verify(t, img)
	g.Expect(got.Reason).To(Equal(trainenvv1.ReasonInvalidPolicy))
	g.Expect(got.Message).To(ContainSubstring(`secrets "release-key" not found`))
}
