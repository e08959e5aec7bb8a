// Package envtestutil starts the real kube-apiserver and etcd (envtest) with the project's
// CRDs, for the packages whose tests need an API server.
package envtestutil

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Start starts an API server with the CRDs of config/crd/bases and config/sigstore
// (ClusterImagePolicy, TrustRoot) installed, and any extra CRD files or directories. Call
// stop when done. It fails with a pointer to `make test` when the binaries are not there.
func Start(extraCRDs ...string) (cfg *rest.Config, stop func() error, err error) {
	e, err := StartEnv(extraCRDs...)
	if err != nil {
		return nil, nil, err
	}
	return e.Config, e.Stop, nil
}

// Env is a running control plane whose kube-apiserver can be stopped and started again in
// place (same address, same certificates, same etcd), as when it is restarted under the
// clients of a cluster.
type Env struct {
	Config  *rest.Config
	env     *envtest.Environment
	certDir string
}

// StartEnv is Start, returning the control plane.
func StartEnv(extraCRDs ...string) (*Env, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, errors.New("KUBEBUILDER_ASSETS is not set: run the tests with `make test`, which builds kube-apiserver and etcd")
	}
	// A certificate directory of our own: envtest regenerates the certificates in a
	// directory it created itself when the API server restarts, and clients holding the
	// old CA could not reconnect.
	certDir, err := os.MkdirTemp("", "trainenv-apiserver-")
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		CRDDirectoryPaths: []string{
			filepath.Join(repoRoot(), "config", "crd", "bases"),
			filepath.Join(repoRoot(), "config", "sigstore"),
		},
		ErrorIfCRDPathMissing: true,
	}
	env.CRDDirectoryPaths = append(env.CRDDirectoryPaths, extraCRDs...)
	apiServer := env.ControlPlane.GetAPIServer()
	apiServer.CertDir = certDir
	// kube-apiserver drains open watches for longer than envtest's default 20 s before it
	// exits on SIGTERM; after this, envtest kills it (SIGKILL), as a crash would.
	env.ControlPlaneStopTimeout = stopTimeout
	cfg, err := env.Start()
	if err != nil {
		_ = os.RemoveAll(certDir)
		return nil, err
	}
	return &Env{Config: cfg, env: env, certDir: certDir}, nil
}

// stopTimeout is how long kube-apiserver may take to stop before it is killed.
const stopTimeout = 3 * time.Second

// StopAPIServer stops kube-apiserver (etcd keeps running): SIGTERM, then SIGKILL if it has
// not exited within a few seconds.
func (e *Env) StopAPIServer() error {
	err := e.env.ControlPlane.APIServer.Stop()
	if err != nil && strings.HasPrefix(err.Error(), "timeout waiting for process kube-apiserver to stop") {
		return nil // killed
	}
	return err
}

// StartAPIServer starts kube-apiserver again after StopAPIServer, and waits until it is healthy.
func (e *Env) StartAPIServer() error { return e.env.ControlPlane.APIServer.Start() }

// Stop stops the control plane and removes its files.
func (e *Env) Stop() error {
	err := e.env.Stop()
	if err != nil && strings.Contains(err.Error(), "timeout waiting for process kube-apiserver to stop") {
		err = nil // killed
	}
	return errors.Join(err, os.RemoveAll(e.certDir))
}

// repoRoot is found from this file's location, so tests of any package can call Start.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}
