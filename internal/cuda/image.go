package cuda

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

const (
	envRequirePrefix  = "NVIDIA_REQUIRE_"
	envRequireJetpack = "NVIDIA_REQUIRE_JETPACK"
	envRequireCUDA    = "NVIDIA_REQUIRE_CUDA"
	envCUDAVersion    = "CUDA_VERSION"
	envDisableRequire = "NVIDIA_DISABLE_REQUIRE"
)

// FromImageEnv reads the requirements from an image's environment as
// nvidia-container-toolkit does: every NVIDIA_REQUIRE_* variable; if NVIDIA_REQUIRE_CUDA is
// absent but CUDA_VERSION is set (older images), cuda>=MAJOR.MINOR of it; nothing when
// NVIDIA_DISABLE_REQUIRE is true. An image with none of these has no requirement.
func FromImageEnv(env []string) (Requirements, error) {
	vars := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	rs := Requirements{Vars: map[string]Requirement{}, Source: "image environment"}
	if disabled, _ := strconv.ParseBool(vars[envDisableRequire]); disabled {
		rs.Source = "image environment (NVIDIA_DISABLE_REQUIRE is set: no requirement)"
		return rs, nil
	}
	for name, value := range vars {
		// The toolkit skips the Jetpack requirement on discrete GPUs, and so do we.
		if !strings.HasPrefix(name, envRequirePrefix) || strings.HasPrefix(name, envRequireJetpack) {
			continue
		}
		req, err := Parse(value)
		if err != nil {
			return Requirements{}, fmt.Errorf("image %s: %w", name, err)
		}
		rs.Vars[name] = req
	}
	if _, ok := rs.Vars[envRequireCUDA]; !ok {
		if v, ok := vars[envCUDAVersion]; ok {
			ver, err := parseVersion(v)
			if err != nil {
				return Requirements{}, fmt.Errorf("image %s: %w", envCUDAVersion, err)
			}
			rs.Vars[envRequireCUDA] = Requirement{{{Property: PropCUDA, Op: ">=", Value: fmt.Sprintf("%d.%d", ver.At(0), ver.At(1))}}}
		}
	}
	return rs, nil
}

// FromSpec parses spec.cuda.require, which replaces what the image declares.
func FromSpec(require string) (Requirements, error) {
	req, err := Parse(require)
	if err != nil {
		return Requirements{}, fmt.Errorf("spec.cuda.require: %w", err)
	}
	return Requirements{Vars: map[string]Requirement{envRequireCUDA: req}, Source: "spec.cuda.require"}, nil
}

func sortedNames(m map[string]Requirement) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
