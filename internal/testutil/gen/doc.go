// Package gen builds the API objects that tests create: TrainingEnvironments, nodes with
// GPU facts, pods and ClusterImagePolicies, in the style of cert-manager's test/unit/gen.
//
//	te := gen.TrainingEnvironment("alice", gen.WithNamespace(ns), gen.WithImage(img), gen.WithGPU(1))
//	n := gen.Node("a100", gen.WithGPUProduct("NVIDIA-A100-SXM4-80GB"), gen.WithGPUs(8),
//		gen.WithDriver("535.104.05"), gen.WithCUDA("12.2"))
//
// Each builder returns a new object with only what its modifiers set; a test states every
// field its assertions depend on.
package gen
