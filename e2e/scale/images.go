//go:build scalebench

package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	cmutate "github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// benchImage is one pushed and signed image.
type benchImage struct {
	tag    string // registry/repo:tag, what the environments ask for
	digest string // sha256:..., what they must be pinned to
	env    []string
	config string // digest of the config blob
}

// cudaVersions are the images' CUDA versions; the last entry is a second 12.6 image whose
// PyTorch declares the compute capabilities it has kernels for.
var cudaVersions = []string{"11.0", "11.1", "11.2", "11.3", "11.4", "11.5", "11.6", "11.7", "11.8", "12.0",
	"12.1", "12.2", "12.3", "12.4", "12.5", "12.6", "12.8", "12.9", "13.0", "12.6-torch"}

const benchRepo = "bench/pytorch-cuda"

// pushSignedImages pushes n images (one CUDA version each), signs each digest with a fresh
// key as `cosign sign --key --tlog-upload=false` does, and applies a ClusterImagePolicy
// trusting that key for the benchmark's repository.
func pushSignedImages(ctx context.Context, cl *cluster, n int) ([]benchImage, error) {
	if n > len(cudaVersions) {
		return nil, fmt.Errorf("at most %d images", len(cudaVersions))
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	sv, err := signature.LoadECDSASignerVerifier(priv, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	logf("pushing and signing %d images", n)
	var out []benchImage
	for _, v := range cudaVersions[:n] {
		img, err := cudaImage(v)
		if err != nil {
			return nil, err
		}
		tag, err := name.NewTag(fmt.Sprintf("%s/%s:%s", cl.registry, benchRepo, v))
		if err != nil {
			return nil, err
		}
		if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
			return nil, fmt.Errorf("pushing %s: %w", tag, err)
		}
		d, err := img.Digest()
		if err != nil {
			return nil, err
		}
		if err := sign(sv, tag.Context().Digest(d.String())); err != nil {
			return nil, fmt.Errorf("signing %s: %w", tag, err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		cd, err := img.ConfigName()
		if err != nil {
			return nil, err
		}
		configBlobs[cd.String()] = true
		out = append(out, benchImage{tag: tag.String(), digest: d.String(), env: cfg.Config.Env, config: cd.String()})
	}
	pub, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		return nil, err
	}
	return out, applyPolicy(ctx, cl, string(pub))
}

// cudaImage is a small image whose config carries what nvidia/cuda images carry.
func cudaImage(version string) (v1.Image, error) {
	img, err := random.Image(1024, 1)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	v, torch := strings.CutSuffix(version, "-torch")
	cfg.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"CUDA_VERSION=" + v + ".0", "NVIDIA_REQUIRE_CUDA=cuda>=" + v, "NVIDIA_VISIBLE_DEVICES=all"}
	if torch {
		cfg.Config.Env = append(cfg.Config.Env, "TORCH_CUDA_ARCH_LIST=8.0 8.6 9.0+PTX")
	}
	cfg.Config.User = "1000"
	return mutate.ConfigFile(img, cfg)
}

// sign attaches a key signature to ref: a simple-signing payload naming the digest,
// signed, pushed as the .sig manifest (no transparency log).
func sign(sv signature.Signer, ref name.Digest) error {
	pl, err := payload.Cosign{Image: ref}.MarshalJSON()
	if err != nil {
		return err
	}
	sig, err := sv.SignMessage(bytes.NewReader(pl))
	if err != nil {
		return err
	}
	ociSig, err := static.NewSignature(pl, base64.StdEncoding.EncodeToString(sig))
	if err != nil {
		return err
	}
	se, err := cmutate.AttachSignatureToEntity(ociremote.SignedUnknown(ref), ociSig)
	if err != nil {
		return err
	}
	return ociremote.WriteSignatures(ref.Repository, se)
}

// applyPolicy trusts publicPEM for every image of the benchmark's repository; a key
// authority without ctlog needs no transparency log (offline).
func applyPolicy(ctx context.Context, cl *cluster, publicPEM string) error {
	cip := &pcv1alpha1.ClusterImagePolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "bench-release"},
		Spec: pcv1alpha1.ClusterImagePolicySpec{
			Images:      []pcv1alpha1.ImagePattern{{Glob: cl.registry + "/bench/**"}},
			Authorities: []pcv1alpha1.Authority{{Name: "release-key", Key: &pcv1alpha1.KeyRef{Data: publicPEM}}},
		},
	}
	// A rerun with --keep signs with a new key: replace the policy.
	_ = cl.c.Delete(ctx, cip)
	return ensure(ctx, cl.c, cip)
}
