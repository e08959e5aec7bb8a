// Package envtestutil starts the real kube-apiserver and etcd (envtest) with the project's
// CRDs, for the packages whose tests need an API server.
package envtestutil

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"

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
	env.ControlPlane.GetAPIServer().CertDir = certDir
	cfg, err := env.Start()
	if err != nil {
		_ = os.RemoveAll(certDir)
		return nil, err
	}
	return &Env{Config: cfg, env: env, certDir: certDir}, nil
}

// StopAPIServer stops kube-apiserver (etcd keeps running).
func (e *Env) StopAPIServer() error { return e.env.ControlPlane.APIServer.Stop() }

// StartAPIServer starts kube-apiserver again after StopAPIServer, and waits until it is healthy.
func (e *Env) StartAPIServer() error { return e.env.ControlPlane.APIServer.Start() }

// Stop stops the control plane and removes its files.
func (e *Env) Stop() error {
	err := e.env.Stop()
	return errors.Join(err, os.RemoveAll(e.certDir))
}

// repoRoot is found from this file's location, so tests of any package can call Start.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}
