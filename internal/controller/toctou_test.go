package controller_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/testutil/sigstoretest"
)

// A registry that answers the tag's first lookup with one image and every later request
// for the tag with another (the TOCTOU class of Crossplane's GHSA-wfqx-gjrf-g28r and
// Kyverno's CVE-2022-47633): trainenv resolves once, verifies that digest and runs that
// digest, so the image it checked is the image that runs, whichever one is signed.
func TestRegistryAnsweringTheTagDifferentlyCannotSwapTheImage(t *testing.T) {
	cases := []struct {
		name        string
		firstSigned bool
	}{
		{"unsigned first, signed later: nothing runs", false},
		{"signed first, unsigned later: the signed digest runs", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			f := newFixture(t)
			k := newKeylessTrust(f)
			f.gpuNode("toctou-a100")
			first := k.reg.Push("team/app", "1", registrytest.Image(t))
			later := k.reg.Push("team/app", "other", registrytest.Image(t))
			signed := later
			if tc.firstSigned {
				signed = first
			}
			k.ss.Sign(t, k.reg.Host+"/team/app@"+signed, k.ss.Issue(t, sigstoretest.Identity{Issuer: ciIssuer, Subject: ciSubject}))

			var mu sync.Mutex
			var tagLookups int
			var requested []string
			k.reg.Intercept(func(_ http.ResponseWriter, req *http.Request) bool {
				mu.Lock()
				defer mu.Unlock()
				requested = append(requested, req.Method+" "+req.URL.Path)
				if strings.HasSuffix(req.URL.Path, "/team/app/manifests/1") {
					if tagLookups++; tagLookups > 1 {
						req.URL.Path = strings.TrimSuffix(req.URL.Path, "1") + later
					}
				}
				return false
			})

			te := f.create("toctou", k.reg.Host+"/team/app:1")
			_, err, te := f.reconcile(te)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(te.Status.Image.Digest).To(Equal(first), "pinned to the first answer")
			g.Expect(te.Status.Verification.Digest).To(Equal(k.reg.Host+"/team/app@"+first), "that digest, not the tag, is verified")
			mu.Lock()
			g.Expect(tagLookups).To(Equal(1), "the tag is looked up once in a pass: %v", requested)
			mu.Unlock()
			// The next tag check gets the other answer: reported, never run (Pinned).
			f.clock.Step(601 * time.Second)
			_, err, te = f.reconcile(te)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(te.Status.Image.Digest).To(Equal(first))
			g.Expect(te.Status.Image.LatestDigest).To(Equal(later))
			sts, err := f.statefulSet(te)
			if !tc.firstSigned {
				g.Expect(te).To(haveCondition(trainenvv1.ConditionVerified, metav1.ConditionFalse, trainenvv1.ReasonNoSignature))
				g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the signed image served later does not vouch for the unsigned one")
				return
			}
			g.Expect(te).To(haveCondition(trainenvv1.ConditionVerified, metav1.ConditionTrue, trainenvv1.ReasonVerified))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(sts.Spec.Template.Spec.Containers[0].Image).To(Equal(k.reg.Host+"/team/app@"+first), "the pod runs the verified digest")
		})
	}
}
