// Command olmcsv renders what OLM's operator lifecycle manager creates from a bundle's
// ClusterServiceVersion for an AllNamespaces install, so that e2e can deploy it without OLM:
// the install strategy's ServiceAccounts, its permissions as a Role and RoleBinding in the
// install namespace, its clusterPermissions as a ClusterRole and ClusterRoleBinding, and its
// Deployments, with the manager image replaced by a built one. It prints them as one YAML
// stream for kubectl apply. What OLM adds beyond this (see docs/platform-admin.md) is not
// rendered: OperatorGroups, the CSV's status and phases, the OperatorCondition and its
// OPERATOR_CONDITION_NAME variable, olm.targetNamespaces annotations, generated role names,
// upgrades between CSVs.
//
// usage: olmcsv -csv bundle/manifests/trainenv.clusterserviceversion.yaml -namespace NS -image REPO@DIGEST
package main

import (
	"flag"
	"fmt"
	"os"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// csv is the part of a ClusterServiceVersion that OLM turns into objects.
type csv struct {
	Metadata metav1.ObjectMeta `json:"metadata"`
	Spec     struct {
		Install struct {
			Strategy string `json:"strategy"`
			Spec     struct {
				Deployments []struct {
					Name  string                `json:"name"`
					Label map[string]string     `json:"label,omitempty"`
					Spec  appsv1.DeploymentSpec `json:"spec"`
				} `json:"deployments"`
				Permissions        []permissions `json:"permissions"`
				ClusterPermissions []permissions `json:"clusterPermissions"`
			} `json:"spec"`
		} `json:"install"`
	} `json:"spec"`
}

type permissions struct {
	ServiceAccountName string              `json:"serviceAccountName"`
	Rules              []rbacv1.PolicyRule `json:"rules"`
}

func main() {
	path := flag.String("csv", "", "the ClusterServiceVersion file")
	ns := flag.String("namespace", "", "the install namespace")
	image := flag.String("image", "", "the image of every container named manager")
	flag.Parse()
	if err := run(*path, *ns, *image); err != nil {
		fmt.Fprintln(os.Stderr, "olmcsv:", err)
		os.Exit(1)
	}
}

func run(path, ns, image string) error {
	if path == "" || ns == "" || image == "" {
		return fmt.Errorf("-csv, -namespace and -image are required")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var c csv
	// A CSV has many more fields than the install strategy: read only those.
	if err := yaml.Unmarshal(b, &c); err != nil {
		return err
	}
	if c.Spec.Install.Strategy != "deployment" {
		return fmt.Errorf("install strategy %q, want deployment", c.Spec.Install.Strategy)
	}
	name := c.Metadata.Name
	var objs []any
	sas := map[string]bool{}
	sa := func(n string) {
		if !sas[n] {
			sas[n] = true
			objs = append(objs, &corev1.ServiceAccount{TypeMeta: typeMeta("v1", "ServiceAccount"), ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: ns}})
		}
	}
	for i, p := range c.Spec.Install.Spec.Permissions {
		sa(p.ServiceAccountName)
		n := fmt.Sprintf("%s-%d", name, i)
		objs = append(objs,
			&rbacv1.Role{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "Role"), ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: ns}, Rules: p.Rules},
			&rbacv1.RoleBinding{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "RoleBinding"), ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: ns},
				RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: n},
				Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: p.ServiceAccountName, Namespace: ns}}})
	}
	for i, p := range c.Spec.Install.Spec.ClusterPermissions {
		sa(p.ServiceAccountName)
		n := fmt.Sprintf("%s-cluster-%d", name, i)
		objs = append(objs,
			&rbacv1.ClusterRole{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "ClusterRole"), ObjectMeta: metav1.ObjectMeta{Name: n}, Rules: p.Rules},
			&rbacv1.ClusterRoleBinding{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"), ObjectMeta: metav1.ObjectMeta{Name: n},
				RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: n},
				Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: p.ServiceAccountName, Namespace: ns}}})
	}
	replaced := 0
	for _, d := range c.Spec.Install.Spec.Deployments {
		spec := d.Spec
		for i := range spec.Template.Spec.Containers {
			ctr := &spec.Template.Spec.Containers[i]
			if ctr.Name != "manager" {
				continue
			}
			ctr.Image = image
			for j := range ctr.Env {
				if ctr.Env[j].Name == "TRAINENV_TOOLS_IMAGE" {
					ctr.Env[j].Value = image
				}
			}
			replaced++
		}
		objs = append(objs, &appsv1.Deployment{TypeMeta: typeMeta("apps/v1", "Deployment"),
			ObjectMeta: metav1.ObjectMeta{Name: d.Name, Namespace: ns, Labels: d.Label}, Spec: spec})
	}
	if replaced == 0 {
		return fmt.Errorf("no container named manager in the install strategy's deployments")
	}
	for _, o := range objs {
		out, err := yaml.Marshal(o)
		if err != nil {
			return err
		}
		fmt.Printf("---\n%s", out)
	}
	return nil
}

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}
