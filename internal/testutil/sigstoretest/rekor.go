package sigstoretest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/cyberphone/json-canonicalization/go/src/webpki.org/jsoncanonicalizer"
	"github.com/go-openapi/strfmt"
	cbundle "github.com/sigstore/cosign/v2/pkg/cosign/bundle"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	"github.com/sigstore/rekor/pkg/generated/models"
	hashedrekord "github.com/sigstore/rekor/pkg/types/hashedrekord/v0.0.1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"k8s.io/utils/ptr"
	"knative.dev/pkg/apis"
)

// RekorURL names the private Rekor. Nothing listens there: a signature that carries its
// bundle is verified with the log key alone.
var RekorURL = apis.HTTPS("rekor.trainenv.test")

// RekorLog is a private Rekor transparency log, reduced to what an offline verifier sees of
// it: the key that signs each entry's SignedEntryTimestamp (SET), and the log ID derived
// from that key. Entries are never stored: `cosign sign` puts the entry and its SET in the
// signature's `dev.sigstore.cosign/bundle` annotation, and a verifier that trusts the log
// key checks that bundle without asking the log.
type RekorLog struct {
	key   *ecdsa.PrivateKey
	index int64
}

// NewRekorLog creates a log with a fresh P-256 key, as Rekor's signer uses.
func NewRekorLog(t testing.TB) *RekorLog { return &RekorLog{key: newKey(t)} }

// TLog is the TrustRoot `tLogs` entry that makes a `ctlog: {trustRootRef}` authority trust
// this log's key. baseURL is where the log would be asked for entries a signature carries no
// bundle for.
func (l *RekorLog) TLog(t testing.TB, baseURL *apis.URL) pcv1alpha1.TransparencyLogInstance {
	t.Helper()
	pub, err := cryptoutils.MarshalPublicKeyToPEM(&l.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pcv1alpha1.TransparencyLogInstance{BaseURL: *baseURL, HashAlgorithm: "sha-256", PublicKey: pub}
}

// LogID is Rekor's log ID: the hex SHA-256 of the log key's DER public key.
func (l *RekorLog) LogID(t testing.TB) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&l.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// HashedRekord returns the canonical body of the `hashedrekord` v0.0.1 entry that `cosign
// sign` uploads for a signature sig of payload made with the key pub: the payload's SHA-256,
// the signature, and the PEM public key. Rekor's own Canonicalize builds it, and it refuses
// (as the log would) an entry whose signature does not verify under its key over its hash,
// so every body made here could have been logged by a real Rekor.
func HashedRekord(t testing.TB, payload, sig []byte, pub crypto.PublicKey) []byte {
	t.Helper()
	pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	if err != nil {
		t.Fatal(err)
	}
	return hashedRekord(t, payload, sig, pubPEM)
}

// HashedRekordCert is HashedRekord for a keyless signature: `cosign sign` then names the
// signing certificate (PEM) as the entry's verifier instead of a bare public key.
func HashedRekordCert(t testing.TB, payload, sig []byte, cert *x509.Certificate) []byte {
	t.Helper()
	certPEM, err := cryptoutils.MarshalCertificateToPEM(cert)
	if err != nil {
		t.Fatal(err)
	}
	return hashedRekord(t, payload, sig, certPEM)
}

func hashedRekord(t testing.TB, payload, sig, verifierPEM []byte) []byte {
	t.Helper()
	sum := sha256.Sum256(payload)
	entry := hashedrekord.V001Entry{HashedRekordObj: models.HashedrekordV001Schema{
		Data: &models.HashedrekordV001SchemaData{Hash: &models.HashedrekordV001SchemaDataHash{
			Algorithm: ptr.To(models.HashedrekordV001SchemaDataHashAlgorithmSha256),
			Value:     ptr.To(hex.EncodeToString(sum[:])),
		}},
		Signature: &models.HashedrekordV001SchemaSignature{
			Content:   strfmt.Base64(sig),
			PublicKey: &models.HashedrekordV001SchemaSignaturePublicKey{Content: strfmt.Base64(verifierPEM)},
		},
	}}
	body, err := entry.Canonicalize(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// Bundle logs body (integrated now, at the next index) and returns the bundle cosign
// attaches: the entry and the log's SET, an ECDSA signature over the canonical JSON of
// {body, integratedTime, logIndex, logID}, as Rekor signs it and cosign's VerifySET checks it.
func (l *RekorLog) Bundle(t testing.TB, body []byte) *cbundle.RekorBundle {
	t.Helper()
	p := cbundle.RekorPayload{
		Body:           base64.StdEncoding.EncodeToString(body),
		IntegratedTime: time.Now().Unix(),
		LogIndex:       l.index,
		LogID:          l.LogID(t),
	}
	l.index++
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	canonical, err := jsoncanonicalizer.Transform(raw)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(canonical)
	set, err := ecdsa.SignASN1(rand.Reader, l.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return &cbundle.RekorBundle{SignedEntryTimestamp: set, Payload: p}
}
