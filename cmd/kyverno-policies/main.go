// Command kyverno-policies prints, as YAML, the Kyverno ImageValidatingPolicies that make
// Kyverno admit trainenv's pods only when their images are pinned by digest and verified
// against the cluster's ClusterImagePolicies (read from the current kubeconfig's cluster):
//
//	go run ./cmd/kyverno-policies | kubectl apply --server-side -f -
//
// Re-run it when the ClusterImagePolicies change. What Kyverno cannot check the same way
// (CUE/Rego predicate policies) is listed as comments; trainenv still enforces it.
//
// With --self-trust-images it prints instead, without reading the cluster, the
// ClusterImagePolicy and the Kyverno ImageValidatingPolicy that trust trainenv's own images
// (manager, node agent, tools) signed by the given key or keyless identity:
//
//	go run ./cmd/kyverno-policies --self-trust-images 'registry.example.com/trainenv/**' \
//	  --self-trust-key cosign.pub | kubectl apply --server-side -f -
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

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
	var st kyverno.SelfTrust
	images := flag.String("self-trust-images", "", "Comma-separated globs of trainenv's own images: print the policies that trust them instead.")
	keyFile := flag.String("self-trust-key", "", "PEM public key that signs trainenv's images (the release key; for a development cluster the cosign.pub of make images).")
	flag.StringVar(&st.Issuer, "self-trust-issuer", "", "Keyless: the OIDC issuer of the release workflow's certificates.")
	flag.StringVar(&st.Subject, "self-trust-subject", "", "Keyless: the release workflow's identity.")
	flag.StringVar(&st.SubjectRegExp, "self-trust-subject-regexp", "", "Keyless: a pattern of the release workflow's identity.")
	flag.StringVar(&st.TrustRootRef, "self-trust-trust-root", "", "Keyless: the TrustRoot of a private Sigstore (empty: public Sigstore).")
	flag.Parse()
	if *images != "" {
		if err := selfTrust(context.Background(), st, *images, *keyFile); err != nil {
			fmt.Fprintln(os.Stderr, "kyverno-policies:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(context.Background(), *ns); err != nil {
		fmt.Fprintln(os.Stderr, "kyverno-policies:", err)
		os.Exit(1)
	}
}

func selfTrust(ctx context.Context, st kyverno.SelfTrust, images, keyFile string) error {
	st.Images = strings.Split(images, ",")
	if keyFile != "" {
		key, err := os.ReadFile(keyFile)
		if err != nil {
			return err
		}
		st.PublicKey = string(key)
	}
	cip, ivp, err := kyverno.SelfTrustPolicies(ctx, st)
	if err != nil {
		return err
	}
	for _, o := range []any{cip, ivp} {
		out, err := yaml.Marshal(o)
		if err != nil {
			return err
		}
		fmt.Print("---\n" + string(out))
	}
	return nil
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
