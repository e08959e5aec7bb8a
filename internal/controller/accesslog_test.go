package controller_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/accesslog"
	"github.com/trainenv/trainenv/internal/controller"
	"github.com/trainenv/trainenv/internal/entrypoint"
	"github.com/trainenv/trainenv/internal/workload"
)

// fakeLogs serves a container log as the kubelet would (the current instance's and the
// previous one's), or an error (envtest has no kubelet: the real reader fails there the
// same way), and records what was asked.
type fakeLogs struct {
	mu            sync.Mutex
	log, previous []byte
	err           error
	calls         []controller.LogRequest
}

func (l *fakeLogs) ReadLog(_ context.Context, req controller.LogRequest) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, req)
	if req.Container != workload.ContainerName || req.LimitBytes <= 0 || !strings.HasSuffix(req.Pod.Name, "-0") {
		return nil, errors.New("wrong pod or container")
	}
	if req.Previous {
		return l.previous, l.err
	}
	return l.log, l.err
}

func (l *fakeLogs) reads() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.calls)
}

func (l *fakeLogs) set(current, previous []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log, l.previous, l.err = current, previous, nil
}

// entrypointLog is what the entrypoint writes for sshd's log lines, from its own audit
// code: the lines the controller parses are the entrypoint's real output.
func entrypointLog(t *testing.T, authorizedKeys string, at time.Time, sshdLines ...string) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "authorized_keys")
	if err := os.WriteFile(path, []byte(authorizedKeys), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	a := &entrypoint.SSHAudit{AuthorizedKeys: path, Out: &out, Now: func() time.Time { at = at.Add(time.Second); return at }}
	for _, l := range sshdLines {
		out.WriteString(l + "\n") // sshd's own line passes through to the log too
		a.Line(l)
	}
	return out.Bytes()
}

func fingerprint(t *testing.T, authorizedKey string) string {
	t.Helper()
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(authorizedKey))
	if err != nil {
		t.Fatal(err)
	}
	return ssh.FingerprintSHA256(key)
}

// The controller reads the audit trail from the pod's log at most every few minutes:
// a log it cannot read (no kubelet) changes nothing and fails nothing; the entrypoint's
// lines become status.lastAccess, status.activity and one Event summing up the logins
// and the refusals; a read that finds nothing new records nothing.
func TestAuditTrailFromThePodLog(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	rec := events.NewFakeRecorder(100)
	logs := &fakeLogs{err: errors.New(`the server could not find the requested resource ( pods/log trail-0)`)}
	f.r.Recorder, f.r.AccessLogs = rec, logs
	keyA, keyC := strings.TrimSpace(authorizedKey(t)), strings.TrimSpace(authorizedKey(t))
	fpA, fpC := fingerprint(t, keyA), fingerprint(t, keyC)
	f.putSecret("trail-keys", map[string]string{"authorized_keys": keyA + " alice@laptop\n"})
	te := f.pinnedOnNode("trail", withAccess)
	pod := f.podFor(te, "trail-a100")
	f.setMain(pod, "", time.Time{}, 0)

	// No kubelet: the log cannot be read; the environment is Ready all the same.
	res, err, te := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionReady, metav1.ConditionTrue, trainenvv1.ReasonReady))
	g.Expect(logs.reads()).To(Equal(1))
	g.Expect(te.Status.LastAccess).To(BeNil())
	g.Expect(res.RequeueAfter).To(BeNumerically(">", 0))
	g.Expect(res.RequeueAfter).To(BeNumerically("<=", 5*time.Minute), "the next read is scheduled")
	drain(rec)

	// Passes in between (a pod event, an edit) do not read the log again.
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(logs.reads()).To(Equal(1), "at most one read per environment per period")

	// Two logins with key A, a refused key C, then the idle monitor's account.
	at := f.clock.Now().Add(time.Minute)
	trail := entrypointLog(t, keyA+" alice@laptop\n", at,
		"Accepted publickey for jovyan from 127.0.0.1 port 40312 ssh2: ED25519 "+fpA,
		"Failed publickey for jovyan from 127.0.0.1 port 40400 ssh2: ED25519 "+fpC,
		"Accepted publickey for jovyan from 127.0.0.1 port 40500 ssh2: ED25519 "+fpA,
	)
	no := false
	trail = append(trail, accesslog.Line(at.Add(time.Minute), accesslog.Event{Event: accesslog.Activity,
		Activity: "no SSH session, no terminal, no busy kernel, no busy process", InUse: &no, IdleSince: at.Format(time.RFC3339)})...)
	logs.set(trail, nil)
	f.clock.Step(5 * time.Minute)
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(logs.reads()).To(Equal(2))
	g.Expect(te.Status.LastAccess).NotTo(BeNil())
	g.Expect(*te.Status.LastAccess).To(And(
		HaveField("Kind", "ssh"), HaveField("Event", accesslog.SSHLogin), HaveField("User", "jovyan"),
		HaveField("KeyFingerprint", fpA), HaveField("KeyComment", "alice@laptop"),
	))
	g.Expect(te.Status.LastAccess.Time.Time).To(BeTemporally("==", at.Add(3*time.Second).Truncate(time.Second)))
	g.Expect(te.Status.Activity).NotTo(BeNil())
	g.Expect(te.Status.Activity.InUse).To(BeFalse())
	g.Expect(te.Status.Activity.IdleSince.Time).To(BeTemporally("==", at.Truncate(time.Second)))
	g.Expect(te.Status.Activity.Summary).To(HavePrefix("no SSH session"))
	g.Expect(drain(rec)).To(ConsistOf(And(
		HavePrefix("Normal "+trainenvv1.ReasonAccessed),
		ContainSubstring("2 SSH logins by "+fpA+" (alice@laptop) in the last 5m0s; 1 refused: SSH key "+fpC+" (key not in authorized_keys)"),
	)))

	// The next read asks from the latest event read, and the same lines (the API's
	// sinceTime has whole seconds) are not announced again.
	f.clock.Step(5 * time.Minute)
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(logs.reads()).To(Equal(3))
	logs.mu.Lock()
	g.Expect(logs.calls[2].Since).To(BeTemporally("==", at.Add(time.Minute)), "from the latest event read")
	g.Expect(logs.calls[2].Previous).To(BeFalse())
	logs.mu.Unlock()
	g.Expect(drain(rec)).To(BeEmpty())
	g.Expect(te.Status.LastAccess.KeyFingerprint).To(Equal(fpA))

	// The container restarted: what its previous run wrote after the last read is read
	// from the previous instance's log, then the new one's.
	yes := true
	kernel := accesslog.Line(at.Add(3*time.Minute), accesslog.Event{Event: accesslog.JupyterKernel, Kernel: "k python3"})
	busy := accesslog.Line(at.Add(4*time.Minute), accesslog.Event{Event: accesslog.Activity, Activity: "busy: python3 (pid 42) at 100 % CPU", InUse: &yes})
	logs.set(busy, append(append([]byte{}, trail...), kernel...))
	f.setMain(pod, "", f.clock.Now(), 1)
	f.clock.Step(5 * time.Minute)
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	logs.mu.Lock()
	g.Expect(logs.calls).To(HaveLen(5))
	g.Expect(logs.calls[3].Previous).To(BeTrue(), "the previous instance first")
	g.Expect(logs.calls[4].Previous).To(BeFalse())
	logs.mu.Unlock()
	g.Expect(te.Status.LastAccess.Kind).To(Equal("jupyter"))
	g.Expect(te.Status.LastAccess.KeyFingerprint).To(BeEmpty())
	g.Expect(te.Status.Activity.InUse).To(BeTrue())
	g.Expect(te.Status.Activity.IdleSince).To(BeNil())
	g.Expect(drain(rec)).To(ConsistOf(ContainSubstring("1 Jupyter kernel started in the last 5m0s")))

	// Suspended: no pod, no activity; the last access stays on record.
	te.Spec.Suspend = true
	g.Expect(k8s.Update(f.ctx, te)).To(Succeed())
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te.Status.Activity).To(BeNil())
	g.Expect(te.Status.LastAccess).NotTo(BeNil())
}
