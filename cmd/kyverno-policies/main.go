// Command kyverno-policies prints, as YAML, the Kyverno ImageValidatingPolicies that make
// Kyverno admit trainenv's pods only when their images are pinned by digest and verified
// against the cluster's ClusterImagePolicies (read from the current kubeconfig's cluster):
//
//	go run ./cmd/kyverno-policies | kubectl apply --server-side -f -
//
// Re-run it when the ClusterImagePolicies change. What Kyverno cannot check the same way
// (CUE/Rego predicate policies) is listed as comments; trainenv still enforces it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/trainenv/trainenv/internal/trust/kyverno"
	"github.com/trainenv/trainenv/internal/trust/policy"
)

func main() {
	ns := flag.String("policy-namespace", policy.DefaultSystemNamespace, "Namespace of the Secrets and ConfigMaps that ClusterImagePolicies reference (policy-controller's).")
	flag.Parse()
	if err := run(context.Background(), *ns); err != nil {
		fmt.Fprintln(os.Stderr, "kyverno-policies:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, ns string) error {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := pcv1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	results, err := kyverno.Generate(ctx, &policy.APISource{Policies: c, Refs: c, SystemNamespace: ns})
	if err != nil {
		return err
	}
	for _, r := range results {
		out, err := yaml.Marshal(r.Policy)
		if err != nil {
			return err
		}
		fmt.Println("---")
		for _, n := range r.Notes {
			fmt.Println("# not checked by Kyverno:", n)
		}
		fmt.Print(string(out))
	}
	return nil
}
