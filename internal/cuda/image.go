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

// ImageRequirementValues returns the requirements an image declares, unparsed, as
// nvidia-container-toolkit collects them: the value of every NVIDIA_REQUIRE_* variable
// (sorted by name; the Jetpack one is for integrated GPUs only); if NVIDIA_REQUIRE_CUDA is
// absent but CUDA_VERSION is set (older images), cuda>=MAJOR.MINOR of it; nothing when
// NVIDIA_DISABLE_REQUIRE is true.
func ImageRequirementValues(env []string) []string {
	vars := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	if disabled, _ := strconv.ParseBool(vars[envDisableRequire]); disabled {
		return nil
	}
	var names []string
	for name := range vars {
		if strings.HasPrefix(name, envRequirePrefix) && !strings.HasPrefix(name, envRequireJetpack) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	values := make([]string, 0, len(names)+1)
	for _, name := range names {
		values = append(values, vars[name])
	}
	if legacy, ok := vars[envCUDAVersion]; ok && legacy != "" && vars[envRequireCUDA] == "" {
		major, rest, _ := strings.Cut(legacy, ".")
		minor, _, _ := strings.Cut(rest, ".")
		if minor == "" {
			minor = "0"
		}
		values = append(values, "cuda>="+major+"."+minor)
	}
	return values
}

// FromValues parses requirement values; source says where they came from, for messages.
func FromValues(values []string, source string) (Requirements, error) {
	rs := Requirements{Source: source}
	for _, v := range values {
		req, err := Parse(v)
		if err != nil {
			return Requirements{}, fmt.Errorf("%s: %w", source, err)
		}
		if len(req) > 0 {
			rs.All = append(rs.All, req)
		}
	}
	return rs, nil
}

// FromImageEnv reads and parses the requirements of an image's environment.
func FromImageEnv(env []string) (Requirements, error) {
	return FromValues(ImageRequirementValues(env), "the image's NVIDIA_REQUIRE_CUDA")
}
