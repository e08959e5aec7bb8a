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
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, nil, errors.New("KUBEBUILDER_ASSETS is not set: run the tests with `make test`, which builds kube-apiserver and etcd")
	}
	env := &envtest.Environment{
		CRDDirectoryPaths: []string{
			filepath.Join(repoRoot(), "config", "crd", "bases"),
			filepath.Join(repoRoot(), "config", "sigstore"),
		},
		ErrorIfCRDPathMissing: true,
	}
	env.CRDDirectoryPaths = append(env.CRDDirectoryPaths, extraCRDs...)
	cfg, err = env.Start()
	if err != nil {
		return nil, nil, err
	}
	return cfg, env.Stop, nil
}

// repoRoot is found from this file's location, so tests of any package can call Start.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}
