package v1alpha1_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trainenv/trainenv/internal/testutil/badinput"
)

// TestBadSpecsAtApply sends bad TrainingEnvironments to a real API server, as kubectl apply
// does (strict field validation). Each is refused with its exact message, which
// docs/bad-input.md records (UPDATE_BAD_INPUT=1 rewrites it); nothing is stored.
func TestBadSpecsAtApply(t *testing.T) {
	const image = "registry.example.com/team/pytorch:2.4"
	with := func(extra map[string]any) map[string]any {
		spec := map[string]any{"image": image}
		for k, v := range extra {
			spec[k] = v
		}
		return spec
	}
	gpu := func(v map[string]any) map[string]any { return with(map[string]any{"gpu": v}) }
	ssh := func(v map[string]any) map[string]any {
		s := map[string]any{"enabled": true, "authorizedKeysSecretRef": map[string]any{"name": "keys"}}
		for k, x := range v {
			s[k] = x
		}
		return with(map[string]any{"ssh": s})
	}
	jupyter := func(v map[string]any) map[string]any {
		j := map[string]any{"enabled": true}
		for k, x := range v {
			j[k] = x
		}
		return with(map[string]any{"jupyter": j})
	}
	workspace := func(v map[string]any) map[string]any { return with(map[string]any{"workspace": v}) }
	many := func(n int, item func(int) any) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = item(i)
		}
		return out
	}
	cases := []struct {
		input string
		spec  map[string]any
		// field is what the message must name (the table records the whole message).
		field string
	}{
		{"no spec at all", nil, "spec"},
		{"no image", map[string]any{}, "spec.image"},
		{"empty image", map[string]any{"image": ""}, "spec.image"},
		{"image with spaces and capitals", map[string]any{"image": "Registry Example/PyTorch:latest"}, "image must be an image reference"},
		{"upper-case repository", map[string]any{"image": "registry.example.com/Team/pytorch:2.4"}, "image must be an image reference"},
		{"digest too short", map[string]any{"image": "registry.example.com/team/pytorch@sha256:abc"}, "image must be an image reference"},
		{"URL instead of a reference", map[string]any{"image": "https://registry.example.com/team/pytorch:2.4"}, "image must be an image reference"},
		{"empty tag", map[string]any{"image": "registry.example.com/team/pytorch:"}, "image must be an image reference"},
		{"tag over 128 characters", map[string]any{"image": "registry.example.com/team/pytorch:" + strings.Repeat("t", 129)}, "image must be an image reference"},
		{"empty path component", map[string]any{"image": "registry.example.com//pytorch"}, "image must be an image reference"},
		{"image over 1024 characters", map[string]any{"image": "registry.example.com/" + strings.Repeat("a", 1020)}, "spec.image"},
		{"updatePolicy not in the enum", with(map[string]any{"updatePolicy": "Sometimes"}), "spec.updatePolicy"},
		{"updatePolicy of the wrong type", with(map[string]any{"updatePolicy": 1}), "spec.updatePolicy"},
		{"followTagIntervalSeconds under 60", with(map[string]any{"followTagIntervalSeconds": 5}), "spec.followTagIntervalSeconds"},
		{"followTagIntervalSeconds over a day", with(map[string]any{"followTagIntervalSeconds": 86401}), "spec.followTagIntervalSeconds"},
		{"followTagIntervalSeconds as a string", with(map[string]any{"followTagIntervalSeconds": "10m"}), "spec.followTagIntervalSeconds"},
		{"platform without os", with(map[string]any{"platform": "amd64"}), "spec.platform"},
		{"platform in capitals", with(map[string]any{"platform": "Linux/AMD64"}), "spec.platform"},
		{"negative GPU count", gpu(map[string]any{"count": -1}), "spec.gpu.count"},
		{"GPU count over 64", gpu(map[string]any{"count": 65}), "spec.gpu.count"},
		{"GPU count as a word", gpu(map[string]any{"count": "two"}), "spec.gpu.count"},
		{"GPU resource name without a domain", gpu(map[string]any{"resourceName": "gpu"}), "spec.gpu.resourceName"},
		{"GPU product with a space (not a node label value)", gpu(map[string]any{"products": []any{"NVIDIA A100"}}), "spec.gpu.products[0]"},
		{"GPU product listed twice", gpu(map[string]any{"products": []any{"Tesla-T4", "Tesla-T4"}}), "spec.gpu.products[1]"},
		{"33 GPU products", gpu(map[string]any{"products": many(33, func(i int) any { return fmt.Sprintf("gpu-%d", i) })}), "spec.gpu.products"},
		{"GPU product over 63 characters", gpu(map[string]any{"products": []any{strings.Repeat("a", 64)}}), "spec.gpu.products[0]"},
		{"CUDA requirement without a property", with(map[string]any{"cuda": map[string]any{"require": "12.4"}}), "cuda.require uses the NVIDIA_REQUIRE_CUDA syntax"},
		{"empty CUDA requirement", with(map[string]any{"cuda": map[string]any{"require": ""}}), "spec.cuda.require"},
		{"SSH enabled without authorized keys", with(map[string]any{"ssh": map[string]any{"enabled": true}}), "ssh.enabled requires ssh.authorizedKeysSecretRef"},
		{"SSH without enabled", with(map[string]any{"ssh": map[string]any{}}), "spec.ssh.enabled"},
		{"authorized keys Secret name in capitals", ssh(map[string]any{"authorizedKeysSecretRef": map[string]any{"name": "Alice_Keys"}}), "spec.ssh.authorizedKeysSecretRef.name"},
		{"authorized keys Secret key with a slash", ssh(map[string]any{"authorizedKeysSecretRef": map[string]any{"name": "keys", "key": ".ssh/authorized_keys"}}), "spec.ssh.authorizedKeysSecretRef.key"},
		{"authorized keys Secret without a name", ssh(map[string]any{"authorizedKeysSecretRef": map[string]any{"key": "authorized_keys"}}), "spec.ssh.authorizedKeysSecretRef.name"},
		{"SSH keepalive every second", ssh(map[string]any{"clientAliveIntervalSeconds": 1}), "spec.ssh.clientAliveIntervalSeconds"},
		{"SSH keepalive count 0", ssh(map[string]any{"clientAliveCountMax": 0}), "spec.ssh.clientAliveCountMax"},
		{"tcpKeepAlive as a string", ssh(map[string]any{"tcpKeepAlive": "yes"}), "spec.ssh.tcpKeepAlive"},
		{"Jupyter without enabled", with(map[string]any{"jupyter": map[string]any{}}), "spec.jupyter.enabled"},
		{"kernels culled after 10 s", jupyter(map[string]any{"cullIdleKernelsAfterSeconds": 10}), "spec.jupyter.cullIdleKernelsAfterSeconds"},
		{"websocket ping every second", jupyter(map[string]any{"websocketPingIntervalSeconds": 1}), "spec.jupyter.websocketPingIntervalSeconds"},
		{"token Secret name with a slash", jupyter(map[string]any{"tokenSecretRef": map[string]any{"name": "team/token"}}), "spec.jupyter.tokenSecretRef.name"},
		{"workspace without a size", workspace(map[string]any{}), "spec.workspace.size"},
		{"workspace of size 0", workspace(map[string]any{"size": "0"}), "workspace.size must be greater than zero"},
		{"workspace of negative size", workspace(map[string]any{"size": "-5Gi"}), "workspace.size must be greater than zero"},
		{"workspace size that is not a quantity", workspace(map[string]any{"size": "lots"}), "spec.workspace.size"},
		{"relative mount path", workspace(map[string]any{"size": "1Gi", "mountPath": "workspace"}), "spec.workspace.mountPath"},
		{"mount path /dev/shm (taken by shared memory)", workspace(map[string]any{"size": "1Gi", "mountPath": "/dev/shm"}), "workspace.mountPath must not be or lie under /dev"},
		{"mount path /tmp (taken by temporary files)", workspace(map[string]any{"size": "1Gi", "mountPath": "/tmp"}), "workspace.mountPath must not be or lie under"},
		{"mount path under /trainenv (the tools)", workspace(map[string]any{"size": "1Gi", "mountPath": "/trainenv/data"}), "workspace.mountPath must not be or lie under"},
		{"mount path /", workspace(map[string]any{"size": "1Gi", "mountPath": "/"}), "workspace.mountPath must be a clean absolute path"},
		{"mount path with ..", workspace(map[string]any{"size": "1Gi", "mountPath": "/workspace/../tmp"}), "workspace.mountPath must be a clean absolute path"},
		{"/dev/shm of size 0", with(map[string]any{"shmSize": "0"}), "shmSize must be greater than zero"},
		{"/dev/shm larger than the memory limit", with(map[string]any{"shmSize": "16Gi", "resources": map[string]any{"memory": "8Gi"}}), "shmSize must not exceed resources.memory"},
		{"default /dev/shm (1Gi) larger than the memory limit", with(map[string]any{"resources": map[string]any{"memory": "512Mi"}}), "shmSize must not exceed resources.memory"},
		{"memory 0", with(map[string]any{"resources": map[string]any{"memory": "0"}}), "resources.memory must be greater than zero"},
		{"negative CPU", with(map[string]any{"resources": map[string]any{"cpu": "-1"}}), "resources.cpu must be greater than zero"},
		{"misspelt field (gpus)", with(map[string]any{"gpus": 2}), `unknown field "spec.gpus"`},
		{"onVerificationLoss not in the enum", with(map[string]any{"trust": map[string]any{"onVerificationLoss": "Delete"}}), "spec.trust.onVerificationLoss"},
		{"suspend as a string", with(map[string]any{"suspend": "true"}), "spec.suspend"},
		{"17 pull Secrets", with(map[string]any{"imagePullSecrets": many(17, func(i int) any { return map[string]any{"name": fmt.Sprintf("s%d", i)} })}), "spec.imagePullSecrets"},
	}
	var rows []badinput.Row
	for i, tc := range cases {
		name := fmt.Sprintf("bad-%d", i+1)
		u := object(name, tc.spec)
		if tc.spec == nil {
			delete(u.Object, "spec")
		}
		err := create(u)
		if err == nil {
			t.Errorf("%s (%s) was accepted", tc.input, name)
			continue
		}
		if !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: the message does not name %q: %v", tc.input, tc.field, err)
		}
		if getErr := k8s.Get(context.Background(), client.ObjectKeyFromObject(u), &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "trainenv.io/v1alpha1", "kind": "TrainingEnvironment"}}); !apierrors.IsNotFound(getErr) {
			t.Errorf("%s: something was stored: %v", tc.input, getErr)
		}
		rows = append(rows, badinput.Row{Input: tc.input, Where: "`kubectl apply` (CRD schema)", Message: err.Error()})
	}
	badinput.Check(t, "TrainingEnvironment", "bad spec", rows)
}
