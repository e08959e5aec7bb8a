package controller_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/trainenv/trainenv/internal/controller"
	"github.com/trainenv/trainenv/internal/registry"
	"github.com/trainenv/trainenv/internal/trust"
)

// testManager is the reconciler in a real manager against envtest, with its writes counted
// and its logs captured.
type testManager struct {
	mgr    ctrl.Manager
	r      *controller.TrainingEnvironmentReconciler
	client *hookedClient
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan struct{}
}

type managerOption func(*ctrl.Options, *controller.TrainingEnvironmentReconciler)

// startManager starts a manager that watches the test's namespace only (the environments
// other tests left behind are not its business: envtest deletes no namespace) and whose
// failed passes are retried within a second (the production backoff grows to 1,000 s: a
// fault test must see recovery in seconds).
func startManager(t *testing.T, ns string, opts ...managerOption) *testManager {
	t.Helper()
	logs := &syncBuffer{}
	o := ctrl.Options{
		Scheme:  scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		Logger:  zap.New(zap.WriteTo(logs), zap.UseDevMode(true), zap.Level(zapcoreLevel(-5))),
		Cache:   cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
	}
	r := &controller.TrainingEnvironmentReconciler{
		Resolver:   registry.NewResolver(nil, 64),
		Verifier:   trust.NotEnforced{},
		Clock:      clock.RealClock{},
		ToolsImage: testToolsImage,
	}
	for _, opt := range opts {
		opt(&o, r)
	}
	mgr, err := ctrl.NewManager(envConfig, o)
	if err != nil {
		t.Fatal(err)
	}
	hc := &hookedClient{Client: mgr.GetClient(), reader: mgr.GetAPIReader()}
	r.Client, r.APIReader, r.Recorder = hc, hc.apiReader(), mgr.GetEventRecorder("trainenv")
	err = r.SetupWithManager(mgr, crcontroller.Options{
		SkipNameValidation: ptr.To(true),
		RateLimiter:        workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](10*time.Millisecond, time.Second),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tm := &testManager{mgr: mgr, r: r, client: hc, logs: logs, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(tm.done)
		if err := mgr.Start(ctx); err != nil {
			t.Logf("manager stopped: %v", err)
		}
	}()
	t.Cleanup(tm.stop)
	return tm
}

func (tm *testManager) stop() {
	tm.cancel()
	<-tm.done
}

// running reports whether the manager is still running (it never exited on its own).
func (tm *testManager) running() bool {
	select {
	case <-tm.done:
		return false
	default:
		return true
	}
}

// errKilled is what every call returns once a hookedClient's process is "dead".
var errKilled = errors.New("the operator process was killed")

// hookedClient counts the reconciler's writes and can die after its Nth create: from
// then on every call fails, as if the process had been killed right after that create
// reached the API server (not even the deferred status patch gets through).
type hookedClient struct {
	client.Client
	reader client.Reader

	mu              sync.Mutex
	writes, creates int
	dieAfterCreates int
	dead            bool
	created         []string
}

func (c *hookedClient) alive() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return errKilled
	}
	return nil
}

func (c *hookedClient) wrote() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
}

func (c *hookedClient) Writes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

func (c *hookedClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := c.alive(); err != nil {
		return err
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

func (c *hookedClient) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if err := c.alive(); err != nil {
		return err
	}
	return c.Client.List(ctx, list, opts...)
}

func (c *hookedClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	if err := c.alive(); err != nil {
		return err
	}
	err := c.Client.Create(ctx, obj, opts...)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	if err == nil {
		c.creates++
		c.created = append(c.created, kindName(obj))
		if c.creates == c.dieAfterCreates {
			c.dead = true
		}
	}
	return err
}

func (c *hookedClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	if err := c.alive(); err != nil {
		return err
	}
	c.wrote()
	return c.Client.Update(ctx, obj, opts...)
}

func (c *hookedClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if err := c.alive(); err != nil {
		return err
	}
	c.wrote()
	return c.Client.Patch(ctx, obj, patch, opts...)
}

func (c *hookedClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	if err := c.alive(); err != nil {
		return err
	}
	c.wrote()
	return c.Client.Delete(ctx, obj, opts...)
}

func (c *hookedClient) Status() client.SubResourceWriter { return hookedStatus{c} }

type hookedStatus struct{ c *hookedClient }

func (s hookedStatus) Create(ctx context.Context, obj client.Object, sub client.Object, opts ...client.SubResourceCreateOption) error {
	if err := s.c.alive(); err != nil {
		return err
	}
	s.c.wrote()
	return s.c.Client.Status().Create(ctx, obj, sub, opts...)
}

func (s hookedStatus) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	if err := s.c.alive(); err != nil {
		return err
	}
	s.c.wrote()
	return s.c.Client.Status().Update(ctx, obj, opts...)
}

func (s hookedStatus) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	if err := s.c.alive(); err != nil {
		return err
	}
	s.c.wrote()
	return s.c.Client.Status().Patch(ctx, obj, patch, opts...)
}

func (s hookedStatus) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
	if err := s.c.alive(); err != nil {
		return err
	}
	s.c.wrote()
	return s.c.Client.Status().Apply(ctx, obj, opts...)
}

// apiReader is the uncached reader (Secrets), dying with the client.
func (c *hookedClient) apiReader() client.Reader { return hookedReader{c} }

type hookedReader struct{ c *hookedClient }

func (r hookedReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := r.c.alive(); err != nil {
		return err
	}
	return r.c.reader.Get(ctx, key, obj, opts...)
}

func (r hookedReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if err := r.c.alive(); err != nil {
		return err
	}
	return r.c.reader.List(ctx, list, opts...)
}

func kindName(obj client.Object) string {
	kinds, _, err := scheme.ObjectKinds(obj)
	if err != nil || len(kinds) == 0 {
		return obj.GetName()
	}
	return kinds[0].Kind + "/" + obj.GetName()
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
