package policy

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/trainenv/trainenv/internal/testutil/sigstoretest"
)

// Sigstore bundles made with the libraries, the way cosign v3 makes them: an in-toto
// statement about the digest (cosign's signing predicate for `cosign sign`, the
// attestation's for `cosign attest`) in a DSSE envelope, signed, wrapped in a bundle and
// attached as an OCI referrer (here the registry has no referrers API, so the referrers
// tag index is used, as on distribution 2.8). The CLI itself is exercised by the
// integration tests; these cover what the CLI cannot make offline or on purpose wrong.

const (
	bundleV03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
	bundleV01 = "application/vnd.dev.sigstore.bundle+json;version=0.1"
)

// bundleSpec says how to make one bundle.
type bundleSpec struct {
	subject       string // the digest (repository@sha256:...) the statement names; default the image
	predicateType string
	predicate     string // JSON
	mediaType     string // default v0.3
	cert          *sigstoretest.Cert
	chain         []*x509.Certificate // v0.1/v0.2 only: the certificate chain instead of the leaf
}

// signBundle attaches what `cosign sign --key` (v3, offline signing config) attaches.
func (s signer) signBundle(t testing.TB, img string) {
	t.Helper()
	attachBundle(t, img, s.sv, bundleSpec{predicateType: cosignSignPredicate, predicate: "{}"})
}

// attestBundle attaches what `cosign attest --type slsaprovenance --key` (v3) attaches.
func (s signer) attestBundle(t testing.TB, img, builderID string) {
	t.Helper()
	attachBundle(t, img, s.sv, bundleSpec{predicateType: slsaV02, predicate: provenance(builderID)})
}

func provenance(builderID string) string {
	return `{"builder":{"id":"` + builderID + `"},"buildType":"https://example.com/build@v1"}`
}

// attachBundle signs a statement as spec says with sv and attaches the bundle to img.
func attachBundle(t testing.TB, img string, sv signature.SignerVerifier, spec bundleSpec) {
	t.Helper()
	ref := digest(t, img)
	raw := makeBundle(t, img, sv, spec)
	if err := ociremote.WriteAttestationNewBundleFormat(ref, raw, spec.predicateType); err != nil {
		t.Fatal(err)
	}
}

func makeBundle(t testing.TB, img string, sv signature.SignerVerifier, spec bundleSpec) []byte {
	t.Helper()
	subject := digest(t, img)
	if spec.subject != "" {
		subject = digest(t, spec.subject)
	}
	stmt := fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":%q,"digest":{"sha256":%q}}],"predicateType":%q,"predicate":%s}`,
		subject.Repository.Name(), strings.TrimPrefix(subject.DigestStr(), "sha256:"), spec.predicateType, spec.predicate)
	signed, err := dsse.WrapSigner(sv, "application/vnd.in-toto+json").SignMessage(bytes.NewReader([]byte(stmt)))
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		PayloadType string `json:"payloadType"`
		Payload     string `json:"payload"`
		Signatures  []struct {
			KeyID string `json:"keyid"`
			Sig   string `json:"sig"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal(signed, &env); err != nil {
		t.Fatal(err)
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	if err != nil {
		t.Fatal(err)
	}
	vm := &protobundle.VerificationMaterial{Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{}}}
	switch {
	case spec.cert != nil && spec.chain != nil:
		chain := &protocommon.X509CertificateChain{Certificates: []*protocommon.X509Certificate{{RawBytes: spec.cert.Cert.Raw}}}
		for _, c := range spec.chain {
			chain.Certificates = append(chain.Certificates, &protocommon.X509Certificate{RawBytes: c.Raw})
		}
		vm.Content = &protobundle.VerificationMaterial_X509CertificateChain{X509CertificateChain: chain}
	case spec.cert != nil:
		vm.Content = &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: spec.cert.Cert.Raw}}
	}
	mt := spec.mediaType
	if mt == "" {
		mt = bundleV03
	}
	raw, err := protojson.Marshal(&protobundle.Bundle{
		MediaType:            mt,
		VerificationMaterial: vm,
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: payload, PayloadType: env.PayloadType, Signatures: []*protodsse.Signature{{Sig: sig}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// certSigner is the signer of a keyless certificate's key.
func certSigner(t testing.TB, c sigstoretest.Cert) signature.SignerVerifier {
	t.Helper()
	sv, err := signature.LoadECDSASignerVerifier(c.Key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return sv
}
