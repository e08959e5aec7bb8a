package sigstoretest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/cosign/v2/pkg/types"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
)

// AttestWithKey attaches an in-toto statement of predicateType about img
// (repository@sha256:...), signed with key, the way `cosign attest --key` (v2) does: a DSSE
// envelope in the .att manifest, beside any attestations already there.
func AttestWithKey(t testing.TB, img string, key *ecdsa.PrivateKey, predicateType, predicate string) {
	t.Helper()
	sv, err := signature.LoadECDSASignerVerifier(key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	Attest(t, img, sv, predicateType, predicate)
}

// Attest is AttestWithKey with any signer.
func Attest(t testing.TB, img string, sv signature.Signer, predicateType, predicate string) {
	t.Helper()
	ref, err := name.NewDigest(img)
	if err != nil {
		t.Fatal(err)
	}
	stmt := fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v0.1","predicateType":%q,"subject":[{"name":%q,"digest":{"sha256":%q}}],"predicate":%s}`,
		predicateType, ref.Repository.Name(), strings.TrimPrefix(ref.DigestStr(), "sha256:"), predicate)
	env, err := dsse.WrapSigner(sv, types.IntotoPayloadType).SignMessage(bytes.NewReader([]byte(stmt)))
	if err != nil {
		t.Fatal(err)
	}
	att, err := static.NewAttestation(env, static.WithLayerMediaType(types.DssePayloadType),
		static.WithAnnotations(map[string]string{"predicateType": predicateType}))
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
