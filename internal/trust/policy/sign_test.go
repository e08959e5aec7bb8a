package policy

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/cosign/v2/pkg/cosign/attestation"
	cbundle "github.com/sigstore/cosign/v2/pkg/cosign/bundle"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/cosign/v2/pkg/types"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/trainenv/trainenv/internal/testutil/gen"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
)

// signer is a cosign key pair generated for one test.
type signer struct {
	sv        signature.SignerVerifier
	publicPEM string
}

func newSigner(t testing.TB) signer {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := signature.LoadECDSASignerVerifier(priv, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return signer{sv: sv, publicPEM: string(pub)}
}

// sign attaches a signature to img the way `cosign sign --key --tlog-upload=false` does:
// a simple-signing payload naming the digest, signed, pushed as the .sig manifest.
func (s signer) sign(t testing.TB, img string) { s.signLogged(t, img, nil) }

// signLogged signs img as sign does and, when logged is not nil, attaches the transparency
// log bundle it returns for the payload and signature, as `cosign sign --key` does after
// uploading the entry to Rekor.
func (s signer) signLogged(t testing.TB, img string, logged func(payload, sig []byte) *cbundle.RekorBundle) {
	t.Helper()
	ref := digest(t, img)
	pl, err := payload.Cosign{Image: ref}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.sv.SignMessage(bytes.NewReader(pl))
	if err != nil {
		t.Fatal(err)
	}
	var opts []static.Option
	if logged != nil {
		opts = append(opts, static.WithBundle(logged(pl, sig)))
	}
	ociSig, err := static.NewSignature(pl, base64.StdEncoding.EncodeToString(sig), opts...)
	if err != nil {
		t.Fatal(err)
	}
	se, err := mutate.AttachSignatureToEntity(ociremote.SignedUnknown(ref), ociSig)
	if err != nil {
		t.Fatal(err)
	}
	if err := ociremote.WriteSignatures(ref.Repository, se); err != nil {
		t.Fatal(err)
	}
}

const slsaV02 = "https://slsa.dev/provenance/v0.2"

// attest attaches a SLSA v0.2 provenance attestation naming builderID, the way
// `cosign attest --type slsaprovenance --key --tlog-upload=false` does: an in-toto
// statement in a DSSE envelope, pushed as the .att manifest.
func (s signer) attest(t testing.TB, img, builderID string) {
	t.Helper()
	s.attestAs(t, img, "slsaprovenance", slsaV02, builderID)
}

// attestAs attaches a signed in-toto attestation whose statement is of statementType (as
// `cosign attest --type`) and whose OCI layer annotation claims annotationType; the
// advisory tests make the two disagree.
func (s signer) attestAs(t testing.TB, img, statementType, annotationType, builderID string) {
	t.Helper()
	ref := digest(t, img)
	stmt, err := attestation.GenerateStatement(attestation.GenerateOpts{
		Predicate: strings.NewReader(`{"builder":{"id":"` + builderID + `"},"buildType":"https://example.com/build@v1"}`),
		Type:      statementType,
		Digest:    strings.TrimPrefix(ref.DigestStr(), "sha256:"),
		Repo:      ref.Repository.String(),
	})
	if err != nil {
		t.Fatal(err)
	}
	pl, err := json.Marshal(stmt)
	if err != nil {
		t.Fatal(err)
	}
	envelope, err := dsse.WrapSigner(s.sv, types.IntotoPayloadType).SignMessage(bytes.NewReader(pl))
	if err != nil {
		t.Fatal(err)
	}
	att, err := static.NewAttestation(envelope, static.WithLayerMediaType(types.DssePayloadType),
		static.WithAnnotations(map[string]string{"predicateType": annotationType}))
	if err != nil {
		t.Fatal(err)
	}
	se, err := mutate.AttachAttestationToEntity(ociremote.SignedUnknown(ref), att)
	if err != nil {
		t.Fatal(err)
	}
	if err := ociremote.WriteAttestations(ref.Repository, se); err != nil {
		t.Fatal(err)
	}
}

func digest(t testing.TB, img string) name.Digest {
	t.Helper()
	ref, err := name.NewDigest(img)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// push writes a fresh random image to repo and returns repo@digest.
func push(t testing.TB, reg *registrytest.Registry, repo string) string {
	t.Helper()
	return reg.Host + "/" + repo + "@" + reg.Push(repo, "latest", registrytest.Image(t))
}

// keyPolicy is a ClusterImagePolicy trusting one key, with no transparency log (so no
// Rekor is needed offline), covering images under glob.
func keyPolicy(name, glob, publicPEM string) pcv1alpha1.ClusterImagePolicy {
	return *gen.ClusterImagePolicy(name, gen.AsStored(), gen.ForImages(glob), gen.WithKey("release-key", publicPEM))
}

// provenancePolicy requires SLSA provenance, signed with the key, from builderID.
func provenancePolicy(name, glob, publicPEM, builderID string) pcv1alpha1.ClusterImagePolicy {
	p := keyPolicy(name, glob, publicPEM)
	p.Spec.Authorities[0].Attestations = []pcv1alpha1.Attestation{{
		Name:          "provenance",
		PredicateType: slsaV02,
		Policy:        &pcv1alpha1.Policy{Type: "cue", Data: `predicate: builder: id: "` + builderID + `"`},
	}}
	return p
}

var bg = context.Background()
