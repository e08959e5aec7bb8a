package envtestutil

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// KyvernoCRD is Kyverno's own ImageValidatingPolicy CRD, from the github.com/kyverno/api
// module trainenv's generator is built with (so the schema is the one the types match).
func KyvernoCRD() (string, error) {
	dir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/kyverno/api").Output()
	if err != nil {
		return "", fmt.Errorf("locating the github.com/kyverno/api module: %w", err)
	}
	return filepath.Join(strings.TrimSpace(string(dir)), "config", "crds", "policies.kyverno.io_imagevalidatingpolicies.yaml"), nil
}
