package gpufacts

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Values of LabelNVML and Facts.NVML.
const (
	NVMLOK          = "ok"
	NVMLUnavailable = "unavailable"
)

// Facts are the GPU facts of one node as the node agent read them with NVML. They are
// published as node labels (Labels) and, in full, as JSON in AnnotationFacts. The type holds
// no NVML types, so the manager can read it without linking NVML.
//
// A nil pointer field means NVML could not tell (the query is not supported on this GPU or
// driver): unknown, not zero.
type Facts struct {
	// NVML is NVMLOK when NVML was read, else NVMLUnavailable, with Error saying why.
	NVML  string `json:"nvml"`
	Error string `json:"error,omitempty"`
	// DriverVersion is the kernel driver's version as NVML reports it, e.g. 535.104.05.
	DriverVersion string `json:"driverVersion,omitempty"`
	// CUDA is the highest CUDA version the driver supports (SystemGetCudaDriverVersion_v2).
	CUDA *Version `json:"cudaDriverVersion,omitempty"`
	GPUs []GPU    `json:"gpus,omitempty"`
	// Healthy is true when no GPU reports a problem worth not scheduling on (Problems).
	Healthy  bool     `json:"healthy"`
	Problems []string `json:"problems,omitempty"`
}

// Version is a major.minor version (a CUDA version or a compute capability).
type Version struct {
	Major int `json:"major"`
	Minor int `json:"minor"`
}

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// GPU is one physical GPU (a MIG-enabled GPU is still one GPU here).
type GPU struct {
	Index int `json:"index"`
	// Product is the name NVML reports, e.g. "NVIDIA A100-SXM4-80GB".
	Product   string `json:"product,omitempty"`
	UUID      string `json:"uuid,omitempty"`
	MemoryMiB uint64 `json:"memoryMiB,omitempty"`
	// Compute is the CUDA compute capability, e.g. 8.0.
	Compute *Version `json:"computeCapability,omitempty"`
	// Architecture is NVML's architecture name, e.g. Ampere.
	Architecture string `json:"architecture,omitempty"`
	// Brand is the brand in lower case as NVIDIA_REQUIRE_CUDA's brand= terms name it
	// (tesla, nvidia, geforce, geforcertx, ...); "unknown" when NVML says so.
	Brand      string `json:"brand,omitempty"`
	MIGEnabled *bool  `json:"migEnabled,omitempty"`
	// MIGDevices counts the MIG devices NVML shows on a MIG-enabled GPU: all of them to the
	// node agent, those given to the pod to the preflight.
	MIGDevices *int   `json:"migDevices,omitempty"`
	Health     Health `json:"health"`
}

// Health holds the GPU's health signals worth scheduling on.
type Health struct {
	// ECCUncorrectedVolatile counts uncorrectable ECC errors since the last driver load.
	ECCUncorrectedVolatile *uint64 `json:"eccUncorrectedVolatile,omitempty"`
	// RetiredPagesPending: pages were retired (pre-Ampere) and take effect only after a reset.
	RetiredPagesPending *bool `json:"retiredPagesPending,omitempty"`
	// RemappedRowsPending: rows were remapped (Ampere and later) and need a reset.
	RemappedRowsPending *bool `json:"remappedRowsPending,omitempty"`
	// RowRemapFailed: a row remapping failed; the GPU needs service.
	RowRemapFailed *bool `json:"rowRemapFailed,omitempty"`
}

// Problems returns what in h makes the GPU unfit for new work; empty when none or unknown.
// Each of these conditions leaves memory the driver cannot trust until the GPU is reset.
func (h Health) Problems() []string {
	var p []string
	if h.ECCUncorrectedVolatile != nil && *h.ECCUncorrectedVolatile > 0 {
		p = append(p, fmt.Sprintf("%d uncorrectable ECC errors since the driver loaded", *h.ECCUncorrectedVolatile))
	}
	if h.RetiredPagesPending != nil && *h.RetiredPagesPending {
		p = append(p, "retired memory pages pending a GPU reset")
	}
	if h.RemappedRowsPending != nil && *h.RemappedRowsPending {
		p = append(p, "remapped memory rows pending a GPU reset")
	}
	if h.RowRemapFailed != nil && *h.RowRemapFailed {
		p = append(p, "a memory row remapping failed")
	}
	return p
}

// Unavailable is the facts of a node whose NVML could not be read: no fact at all, so none
// stale is published as current.
func Unavailable(reason string) Facts {
	return Facts{NVML: NVMLUnavailable, Error: reason}
}

// ManagedLabelKeys returns every label key the node agent may write, sorted. The agent
// removes the ones it no longer has a value for; the admission policy in config/agent
// allows the agent to change these keys and no others.
func ManagedLabelKeys() []string {
	return []string{
		LabelDriverFull, LabelDriverMajor, LabelDriverMinor, LabelDriverRevision,
		LabelCUDAFull, LabelCUDAMajor, LabelCUDAMinor,
		LabelComputeMajor, LabelComputeMinor, LabelCount, LabelFamily, LabelMemoryMiB, LabelProduct,
		LabelCUDAInt, LabelDriverInt, LabelBrand, LabelComputeInt, LabelHealthy, LabelNVML,
	}
}

// IsGFDLabel tells whether key is one of the managed keys named after GPU Feature Discovery,
// which the agent leaves to GFD on nodes where GFD runs.
func IsGFDLabel(key string) bool { return strings.HasPrefix(key, "nvidia.com/") }

// Labels returns the node labels for f. Facts NVML could not tell get no label (not a
// guessed value). Per-GPU labels describe the first GPU, as GFD's do; the annotation has
// every GPU. Every value is a valid label value: one that is not is left out.
func (f Facts) Labels() map[string]string {
	if f.NVML != NVMLOK {
		return map[string]string{LabelNVML: NVMLUnavailable}
	}
	l := map[string]string{
		LabelNVML:    NVMLOK,
		LabelHealthy: strconv.FormatBool(f.Healthy),
		LabelCount:   strconv.Itoa(len(f.GPUs)),
	}
	f.driverLabels(l)
	if f.CUDA != nil {
		l[LabelCUDAMajor] = strconv.Itoa(f.CUDA.Major)
		l[LabelCUDAMinor] = strconv.Itoa(f.CUDA.Minor)
		l[LabelCUDAFull] = f.CUDA.String()
		l[LabelCUDAInt] = strconv.Itoa(f.CUDA.Major*1000 + f.CUDA.Minor*10)
	}
	if len(f.GPUs) > 0 {
		f.GPUs[0].labels(l)
	}
	for k, v := range l {
		if len(validation.IsValidLabelValue(v)) > 0 {
			delete(l, k)
		}
	}
	return l
}

// driverLabels splits the driver version as GFD does (major.minor[.revision], the revision
// kept as written, e.g. "05"), and encodes it as major*1000000+minor*1000+revision. A version
// of another shape gets only the full label.
func (f Facts) driverLabels(l map[string]string) {
	if f.DriverVersion == "" {
		return
	}
	l[LabelDriverFull] = f.DriverVersion
	parts := strings.Split(f.DriverVersion, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		// Minor and revision above 999 would overflow into the next field of the integer.
		if err != nil || v < 0 || (i > 0 && v > 999) {
			return
		}
		n[i] = v
	}
	l[LabelDriverMajor], l[LabelDriverMinor] = parts[0], parts[1]
	if len(parts) == 3 {
		l[LabelDriverRevision] = parts[2]
	}
	l[LabelDriverInt] = strconv.Itoa(n[0]*1_000_000 + n[1]*1000 + n[2])
}

func (g GPU) labels(l map[string]string) {
	if p := ProductLabelValue(g.Product); p != "" {
		l[LabelProduct] = p
	}
	if g.MemoryMiB > 0 {
		l[LabelMemoryMiB] = strconv.FormatUint(g.MemoryMiB, 10)
	}
	if g.Brand != "" {
		l[LabelBrand] = strings.ToLower(g.Brand)
	}
	// GFD leaves the architecture labels out when the compute capability is 0.
	if c := g.Compute; c != nil && c.Major > 0 {
		l[LabelComputeMajor] = strconv.Itoa(c.Major)
		l[LabelComputeMinor] = strconv.Itoa(c.Minor)
		// A minor of 10 or more would read as the next major (8.10 as 9.0): no integer label
		// then; the major and minor labels above still describe the node (GFD's scheme).
		if c.Minor >= 0 && c.Minor <= 9 {
			l[LabelComputeInt] = strconv.Itoa(c.Major*10 + c.Minor)
		}
		l[LabelFamily] = Family(*c)
	}
}

var notInProduct = regexp.MustCompile(`[^A-Za-z0-9._ -]`)

// ProductLabelValue turns an NVML device name into GFD's nvidia.com/gpu.product value: other
// characters than letters, digits, '-', '_', '.' and spaces dropped, runs of spaces made one
// '-' ("NVIDIA A100-SXM4-80GB" → "NVIDIA-A100-SXM4-80GB"). GFD stops there; a name longer
// than a label value may be is cut to 63 characters here, so the label is still written.
func ProductLabelValue(name string) string {
	v := strings.Join(strings.Fields(notInProduct.ReplaceAllString(name, "")), "-")
	if len(v) > validation.LabelValueMaxLength {
		v = v[:validation.LabelValueMaxLength]
	}
	return strings.TrimRight(v, "-_.")
}

// Family names the GPU family from the compute capability exactly as GFD does for
// nvidia.com/gpu.family (Blackwell spans 10.x and 12.x); "undefined" for others.
func Family(c Version) string {
	switch c.Major {
	case 1:
		return "tesla"
	case 2:
		return "fermi"
	case 3:
		return "kepler"
	case 5:
		return "maxwell"
	case 6:
		return "pascal"
	case 7:
		if c.Minor < 5 {
			return "volta"
		}
		return "turing"
	case 8:
		if c.Minor < 9 {
			return "ampere"
		}
		return "ada-lovelace"
	case 9:
		return "hopper"
	case 10, 12:
		return "blackwell"
	}
	return "undefined"
}

// WithHealth returns f with the health problems of every GPU, each prefixed with the GPU it
// is about, added after the problems already there (e.g. a GPU NVML could not read), and
// Healthy set from them.
func (f Facts) WithHealth() Facts {
	problems := slices.Clone(f.Problems)
	for _, g := range f.GPUs {
		for _, p := range g.Health.Problems() {
			problems = append(problems, fmt.Sprintf("GPU %d (%s): %s", g.Index, g.UUID, p))
		}
	}
	f.Problems = problems
	f.Healthy = len(problems) == 0
	return f
}
