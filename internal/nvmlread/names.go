package nvmlread

import "github.com/NVIDIA/go-nvml/pkg/nvml"

// brandNames are the brands as NVIDIA_REQUIRE_CUDA's brand= terms name them: go-nvlib's
// names (which the NVIDIA Container Toolkit compares, case-insensitively) in lower case.
// CUDA base images list e.g. brand=tesla, brand=nvidia, brand=nvidiartx, brand=geforcertx.
var brandNames = map[nvml.BrandType]string{
	nvml.BRAND_UNKNOWN:             "unknown",
	nvml.BRAND_QUADRO:              "quadro",
	nvml.BRAND_TESLA:               "tesla",
	nvml.BRAND_NVS:                 "nvs",
	nvml.BRAND_GRID:                "grid",
	nvml.BRAND_GEFORCE:             "geforce",
	nvml.BRAND_TITAN:               "titan",
	nvml.BRAND_NVIDIA_VAPPS:        "nvidiavapps",
	nvml.BRAND_NVIDIA_VPC:          "nvidiavpc",
	nvml.BRAND_NVIDIA_VCS:          "nvidiavcs",
	nvml.BRAND_NVIDIA_VWS:          "nvidiavws",
	nvml.BRAND_NVIDIA_CLOUD_GAMING: "nvidiacloudgaming",
	nvml.BRAND_QUADRO_RTX:          "quadrortx",
	nvml.BRAND_NVIDIA_RTX:          "nvidiartx",
	nvml.BRAND_NVIDIA:              "nvidia",
	nvml.BRAND_GEFORCE_RTX:         "geforcertx",
	nvml.BRAND_TITAN_RTX:           "titanrtx",
}

// brandName is "" (unknown, no label) for a brand newer than this table rather than a guess.
func brandName(b nvml.BrandType) string { return brandNames[b] }

var architectureNames = map[nvml.DeviceArchitecture]string{
	nvml.DEVICE_ARCH_KEPLER:    "Kepler",
	nvml.DEVICE_ARCH_MAXWELL:   "Maxwell",
	nvml.DEVICE_ARCH_PASCAL:    "Pascal",
	nvml.DEVICE_ARCH_VOLTA:     "Volta",
	nvml.DEVICE_ARCH_TURING:    "Turing",
	nvml.DEVICE_ARCH_AMPERE:    "Ampere",
	nvml.DEVICE_ARCH_ADA:       "Ada",
	nvml.DEVICE_ARCH_HOPPER:    "Hopper",
	nvml.DEVICE_ARCH_BLACKWELL: "Blackwell",
	nvml.DEVICE_ARCH_RUBIN:     "Rubin",
}

// architectureName is for people (the annotation); labels take the family from the compute
// capability, as GFD does, so both agree on every node.
func architectureName(a nvml.DeviceArchitecture) string { return architectureNames[a] }
