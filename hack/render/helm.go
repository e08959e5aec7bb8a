package render

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Helm is the helm binary: $HELM (set by make), else bin/helm-* of the repository.
func Helm() (string, error) {
	if h := os.Getenv("HELM"); h != "" {
		return h, nil
	}
	matches, _ := filepath.Glob(filepath.Join(RepoRoot(), "bin", "helm-v*"))
	if len(matches) == 0 {
		return "", fmt.Errorf("no helm: run `make helm` (or the tests with `make test`)")
	}
	return matches[len(matches)-1], nil
}

// HelmTemplate runs `helm template RELEASE charts/trainenv --namespace NS` with extra
// arguments (e.g. --set, --values) and returns the objects, or helm's error output.
func HelmTemplate(release, namespace string, args ...string) ([]*unstructured.Unstructured, error) {
	out, err := RunHelm(append([]string{"template", release, ChartDir(), "--namespace", namespace}, args...)...)
	if err != nil {
		return nil, err
	}
	return Decode(out)
}

// RunHelm runs helm; the error carries its standard error.
func RunHelm(args ...string) ([]byte, error) {
	helm, err := Helm()
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helm, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("helm %v: %w: %s", args, err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// ChartDir is charts/trainenv.
func ChartDir() string { return filepath.Join(RepoRoot(), "charts", "trainenv") }
