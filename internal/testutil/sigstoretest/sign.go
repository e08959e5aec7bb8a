package sigstoretest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	cbundle "github.com/sigstore/cosign/v2/pkg/cosign/bundle"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"knative.dev/pkg/apis"
)

// FulcioURL and CTLogURL name this Sigstore's services. Nothing listens there: keyless
// verification with a TrustRoot needs only the keys and certificates, never the network.
var (
	FulcioURL = apis.HTTPS("fulcio.trainenv.test")
	CTLogURL  = apis.HTTPS("ctlog.trainenv.test")
)

// TrustRoot is the policy-controller TrustRoot (sigstoreKeys) holding this Sigstore's CA
// chain and CT log key, as a platform team running a private Sigstore writes it.
func (s *Sigstore) TrustRoot(t testing.TB, trName string) *pcv1alpha1.TrustRoot {
	t.Helper()
	chain, err := cryptoutils.MarshalCertificatesToPEM([]*x509.Certificate{s.Intermediate, s.Root})
	if err != nil {
		t.Fatal(err)
	}
	ctPub, err := cryptoutils.MarshalPublicKeyToPEM(&s.ctLog.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return &pcv1alpha1.TrustRoot{
		ObjectMeta: metav1.ObjectMeta{Name: trName, UID: types.UID("uid-" + trName), Generation: 1},
		Spec: pcv1alpha1.TrustRootSpec{SigstoreKeys: &pcv1alpha1.SigstoreKeys{
			CertificateAuthorities: []pcv1alpha1.CertificateAuthority{{
				Subject:   pcv1alpha1.DistinguishedName{Organization: "trainenv.test", CommonName: "trainenv-test-fulcio"},
				URI:       *FulcioURL,
				CertChain: chain,
			}},
			CTLogs: []pcv1alpha1.TransparencyLogInstance{{BaseURL: *CTLogURL, HashAlgorithm: "sha-256", PublicKey: ctPub}},
		}},
	}
}

// Sign attaches a keyless signature of img (repository@sha256:...) made with c, the way
// `cosign sign` does after Fulcio issued c: the simple-signing payload signed with the
// certificate's key, pushed as the .sig manifest with the certificate and its chain.
func (s *Sigstore) Sign(t testing.TB, img string, c Cert, opts ...ociremote.Option) {
	t.Helper()
	s.SignLogged(t, img, c, nil, opts...)
}

// SignLogged signs img as Sign does and, when logged is not nil, attaches the transparency
// log bundle it returns for the payload and signature (the `dev.sigstore.cosign/bundle`
// annotation), as `cosign sign` does after uploading the entry to Rekor.
func (s *Sigstore) SignLogged(t testing.TB, img string, c Cert, logged func(payload, sig []byte) *cbundle.RekorBundle, opts ...ociremote.Option) {
	t.Helper()
	ref, err := name.NewDigest(img)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := payload.Cosign{Image: ref}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signMessage(c.Key, pl)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := cryptoutils.MarshalCertificateToPEM(c.Cert)
	if err != nil {
		t.Fatal(err)
	}
	chainPEM, err := cryptoutils.MarshalCertificatesToPEM([]*x509.Certificate{s.Intermediate, s.Root})
	if err != nil {
		t.Fatal(err)
	}
	sigOpts := []static.Option{static.WithCertChain(certPEM, chainPEM)}
	if logged != nil {
		sigOpts = append(sigOpts, static.WithBundle(logged(pl, sig)))
	}
	ociSig, err := static.NewSignature(pl, base64.StdEncoding.EncodeToString(sig), sigOpts...)
	if err != nil {
		t.Fatal(err)
	}
	se, err := mutate.AttachSignatureToEntity(ociremote.SignedUnknown(ref, opts...), ociSig)
	if err != nil {
		t.Fatal(err)
	}
	if err := ociremote.WriteSignatures(ref.Repository, se, opts...); err != nil {
		t.Fatal(err)
	}
}

func signMessage(key *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
	sv, err := signature.LoadECDSASignerVerifier(key, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return sv.SignMessage(bytes.NewReader(msg))
}
