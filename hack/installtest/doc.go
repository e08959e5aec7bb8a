// Package installtest checks the three install paths (kustomize config/, the Helm chart,
// the OLM bundle) against a real kube-apiserver: each renders, what it renders passes the
// API server's validation (server-side dry run, CRDs installed for real first), and all
// three grant the same least-privilege RBAC. The package has tests only.
package installtest
