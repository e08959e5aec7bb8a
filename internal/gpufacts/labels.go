// Package gpufacts names the GPU facts of a node as node labels, and reads them back. The
// node agent writes them (read with NVML); the controller reads them to decide where an
// image's CUDA requirement holds. Where NVIDIA GPU Feature Discovery (GFD) has a name for a
// fact, that name is used, so clusters running GFD or the GPU Operator need no agent.
package gpufacts

// Labels named as GFD names them (current names).
const (
	LabelDriverMajor    = "nvidia.com/cuda.driver-version.major"
	LabelDriverMinor    = "nvidia.com/cuda.driver-version.minor"
	LabelDriverRevision = "nvidia.com/cuda.driver-version.revision"
	LabelDriverFull     = "nvidia.com/cuda.driver-version.full"
	// The "runtime" labels hold, despite their name, the highest CUDA version the driver
	// supports (what NVML's SystemGetCudaDriverVersion_v2 returns).
	LabelCUDAMajor    = "nvidia.com/cuda.runtime-version.major"
	LabelCUDAMinor    = "nvidia.com/cuda.runtime-version.minor"
	LabelCUDAFull     = "nvidia.com/cuda.runtime-version.full"
	LabelComputeMajor = "nvidia.com/gpu.compute.major"
	LabelComputeMinor = "nvidia.com/gpu.compute.minor"
	LabelProduct      = "nvidia.com/gpu.product"
	LabelFamily       = "nvidia.com/gpu.family"
	LabelMemoryMiB    = "nvidia.com/gpu.memory"
	LabelCount        = "nvidia.com/gpu.count"
)

// Deprecated GFD names, still read (older GFD releases and GPU Operator versions).
const (
	LabelDeprecatedDriverMajor    = "nvidia.com/cuda.driver.major"
	LabelDeprecatedDriverMinor    = "nvidia.com/cuda.driver.minor"
	LabelDeprecatedDriverRevision = "nvidia.com/cuda.driver.rev"
	LabelDeprecatedCUDAMajor      = "nvidia.com/cuda.runtime.major"
	LabelDeprecatedCUDAMinor      = "nvidia.com/cuda.runtime.minor"
)

// trainenv's own labels: facts GFD does not publish, and single integers that make node
// affinity simple (the Gt and Lt operators compare integers).
const (
	// LabelBrand is the GPU brand in lower case (tesla, geforce, quadro, nvidia, ...), which
	// brand= terms of NVIDIA_REQUIRE_CUDA need and GFD does not publish.
	LabelBrand = "trainenv.io/gpu.brand"
	// LabelCUDAInt is the highest supported CUDA version as major*1000+minor*10 (12.4 → 12040),
	// the encoding CUDA itself uses (cudaDriverGetVersion).
	LabelCUDAInt = "trainenv.io/cuda.driver-supports"
	// LabelDriverInt is the driver version as major*1000000+minor*1000+revision
	// (535.104.05 → 535104005), so driver>=X becomes one Gt term.
	LabelDriverInt = "trainenv.io/cuda.driver-version"
	// LabelComputeInt is the compute capability as major*10+minor (8.0 → 80, 10.0 → 100).
	LabelComputeInt = "trainenv.io/gpu.compute"
	// LabelHealthy is "true" when no GPU of the node reports a health problem, else "false".
	LabelHealthy = "trainenv.io/gpu.healthy"
	// LabelNVML is "ok" when the agent read NVML, or the reason it could not ("unavailable").
	LabelNVML = "trainenv.io/nvml"

	// AnnotationFacts holds the full detail, as JSON (a Facts value), for people and tools:
	// kubectl get node NAME -o jsonpath='{.metadata.annotations.trainenv\.io/gpu-facts}'.
	AnnotationFacts = "trainenv.io/gpu-facts"
)
