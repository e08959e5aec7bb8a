package registry_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"

	kauth "github.com/google/go-containerregistry/pkg/authn/kubernetes"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/trainenv/trainenv/internal/registry"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
)

func resolve(_ *registrytest.Registry, r *registry.Resolver, image, platform string, secrets ...corev1.Secret) (registry.Resolution, error) {
	keychain, err := kauth.NewFromPullSecrets(context.Background(), secrets)
	if err != nil {
		return registry.Resolution{}, err
	}
	return r.Resolve(context.Background(), registry.Request{Image: image, Platform: platform, Keychain: keychain})
}

func TestResolveTagToDigestAndConfig(t *testing.T) {
	g := NewWithT(t)
	reg := registrytest.New(t)
	img := registrytest.Image(t, "CUDA_VERSION=12.4.1", "NVIDIA_REQUIRE_CUDA=cuda>=12.4")
	digest := reg.Push("team/pytorch", "2.4", img)

	res, err := resolve(reg, registry.NewResolver(nil, 16), reg.Host+"/team/pytorch:2.4", "linux/amd64")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Digest).To(Equal(digest))
	g.Expect(res.TargetDigest).To(Equal(digest))
	g.Expect(res.IndexDigest).To(BeEmpty())
	g.Expect(res.Pinned()).To(Equal(reg.Host + "/team/pytorch@" + digest))
	v, ok := res.Config.Lookup("NVIDIA_REQUIRE_CUDA")
	g.Expect(ok).To(BeTrue())
	g.Expect(v).To(Equal("cuda>=12.4"))
	g.Expect(res.Config.User).To(Equal("1000"))
}

func TestResolveMultiPlatformIndexPicksPlatformManifest(t *testing.T) {
	g := NewWithT(t)
	reg := registrytest.New(t)
	amd, arm := registrytest.Image(t, "ARCH=amd64"), registrytest.Image(t, "ARCH=arm64")
	index := reg.PushIndex("team/pytorch", "multi", map[string]v1Image{"linux/amd64": amd, "linux/arm64": arm})
	r := registry.NewResolver(nil, 16)

	res, err := resolve(reg, r, reg.Host+"/team/pytorch:multi", "linux/amd64")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Digest).To(Equal(registrytest.Digest(t, amd)))
	g.Expect(res.IndexDigest).To(Equal(index))
	arch, _ := res.Config.Lookup("ARCH")
	g.Expect(arch).To(Equal("amd64"))

	res, err = resolve(reg, r, reg.Host+"/team/pytorch:multi", "linux/arm64")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Digest).To(Equal(registrytest.Digest(t, arm)))

	_, err = resolve(reg, r, reg.Host+"/team/pytorch:multi", "linux/s390x")
	g.Expect(registry.KindOf(err)).To(Equal(registry.KindPlatformNotFound))
	g.Expect(err.Error()).To(ContainSubstring("linux/s390x"))
}

func TestResolveByDigest(t *testing.T) {
	g := NewWithT(t)
	reg := registrytest.New(t)
	digest := reg.Push("team/pytorch", "2.4", registrytest.Image(t))
	res, err := resolve(reg, registry.NewResolver(nil, 16), reg.Host+"/team/pytorch@"+digest, "linux/amd64")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Digest).To(Equal(digest))
}

func TestResolveSeesTagMove(t *testing.T) {
	g := NewWithT(t)
	reg := registrytest.New(t)
	r := registry.NewResolver(nil, 16)
	first := reg.Push("team/pytorch", "latest", registrytest.Image(t))
	res, err := resolve(reg, r, reg.Host+"/team/pytorch:latest", "linux/amd64")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Digest).To(Equal(first))

	second := reg.Push("team/pytorch", "latest", registrytest.Image(t))
	res, err = resolve(reg, r, reg.Host+"/team/pytorch:latest", "linux/amd64")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Digest).To(Equal(second))
}

func TestResolveErrorsAreClassified(t *testing.T) {
	g := NewWithT(t)
	reg := registrytest.New(t)
	r := registry.NewResolver(nil, 16)
	reg.Push("team/pytorch", "2.4", registrytest.Image(t))

	_, err := resolve(reg, r, reg.Host+"/team/pytorch:missing", "linux/amd64")
	g.Expect(registry.KindOf(err)).To(Equal(registry.KindNotFound))

	_, err = resolve(reg, r, reg.Host+"/team/nothing:2.4", "linux/amd64")
	g.Expect(registry.KindOf(err)).To(Equal(registry.KindNotFound))

	reg.SetDown(true)
	_, err = resolve(reg, r, reg.Host+"/team/pytorch:2.4", "linux/amd64")
	g.Expect(registry.KindOf(err)).To(Equal(registry.KindUnavailable))
	g.Expect(err.Error()).To(ContainSubstring("503"))

	_, err = resolve(reg, r, "127.0.0.1:1/team/pytorch:2.4", "linux/amd64")
	g.Expect(registry.KindOf(err)).To(Equal(registry.KindUnavailable))

	_, err = resolve(reg, r, "Not A Reference", "linux/amd64")
	g.Expect(err).To(HaveOccurred())
}

func TestResolveWithPullSecret(t *testing.T) {
	g := NewWithT(t)
	reg := registrytest.New(t)
	reg.RequireBasicAuth("alice", "s3cret")
	digest := reg.Push("private/pytorch", "2.4", registrytest.Image(t))
	r := registry.NewResolver(nil, 16)
	image := reg.Host + "/private/pytorch:2.4"

	_, err := resolve(reg, r, image, "linux/amd64")
	g.Expect(registry.KindOf(err)).To(Equal(registry.KindUnauthorized))

	for _, secret := range []corev1.Secret{dockerConfigJSON(t, reg.Host, "alice", "s3cret"), dockerCfg(t, reg.Host, "alice", "s3cret")} {
		res, err := resolve(reg, r, image, "linux/amd64", secret)
		g.Expect(err).NotTo(HaveOccurred(), "secret type %s", secret.Type)
		g.Expect(res.Digest).To(Equal(digest))
	}

	_, err = resolve(reg, r, image, "linux/amd64", dockerConfigJSON(t, reg.Host, "alice", "wrong"))
	g.Expect(registry.KindOf(err)).To(Equal(registry.KindUnauthorized))
}

// Digests are immutable: once read, a manifest and config are never fetched again, and a
// resolution of the same tag costs the ping and one HEAD.
func TestResolveCachesByDigest(t *testing.T) {
	g := NewWithT(t)
	reg := registrytest.New(t)
	reg.Push("team/pytorch", "2.4", registrytest.Image(t))
	r := registry.NewResolver(http.DefaultTransport, 16)
	image := reg.Host + "/team/pytorch:2.4"

	_, err := resolve(reg, r, image, "linux/amd64")
	g.Expect(err).NotTo(HaveOccurred())
	reg.Requests()
	_, err = resolve(reg, r, image, "linux/amd64")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(reg.Requests()).To(ConsistOf("GET /v2/", "HEAD /v2/team/pytorch/manifests/2.4"))
}

func dockerConfigJSON(t *testing.T, host, user, password string) corev1.Secret {
	cfg := map[string]any{"auths": map[string]any{host: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}}}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return corev1.Secret{Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: data}}
}

func dockerCfg(t *testing.T, host, user, password string) corev1.Secret {
	cfg := map[string]any{host: map[string]string{"username": user, "password": password}}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return corev1.Secret{Type: corev1.SecretTypeDockercfg, Data: map[string][]byte{corev1.DockerConfigKey: data}}
}
