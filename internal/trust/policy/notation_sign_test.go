package policy

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/notaryproject/notation-core-go/signature"
	"github.com/notaryproject/notation-core-go/signature/jws"
	"github.com/notaryproject/notation-go"
	nregistry "github.com/notaryproject/notation-go/registry"
	nsigner "github.com/notaryproject/notation-go/signer"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
)

// Notation signatures made with notation-go itself (its GenericSigner, its Sign pushing
// through oras to the test registry: a referrer under the OCI referrers API, or the
// sha256-<hex> referrers tag on a registry without it), by certificates of a CA made here.

// notaryCA is a test certificate authority; crl, when served, is its CRL.
type notaryCA struct {
	cert *x509.Certificate
	key  crypto.Signer

	mu      sync.Mutex
	revoked []*big.Int
	crl     *httptest.Server
}

func newNotaryCA(t testing.TB, name string) *notaryCA {
	t.Helper()
	key := ecKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{Country: []string{"US"}, Organization: []string{"trainenv tests"}, CommonName: name},
		NotBefore: time.Now().Add(-7 * 24 * time.Hour), NotAfter: time.Now().Add(7 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &notaryCA{cert: cert, key: key}
}

// serveCRL starts the CA's CRL distribution point on loopback; leaves issued after it
// name it.
func (ca *notaryCA) serveCRL(t testing.TB) {
	t.Helper()
	ca.crl = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		ca.mu.Lock()
		var entries []x509.RevocationListEntry
		for _, s := range ca.revoked {
			entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now().Add(-time.Minute)})
		}
		ca.mu.Unlock()
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
			Number: big.NewInt(time.Now().UnixNano()), ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: time.Now().Add(time.Hour),
			RevokedCertificateEntries: entries,
		}, ca.cert, ca.key)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/pkix-crl")
		_, _ = w.Write(der)
	}))
	t.Cleanup(ca.crl.Close)
}

func (ca *notaryCA) revoke(c *x509.Certificate) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	ca.revoked = append(ca.revoked, c.SerialNumber)
}

func (ca *notaryCA) pem() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}))
}

// notarySigner is a code-signing leaf of a CA and its key.
type notarySigner struct {
	ca   *notaryCA
	cert *x509.Certificate
	key  crypto.Signer
}

// leaf issues a code-signing certificate valid from notBefore to notAfter.
func (ca *notaryCA) leaf(t testing.TB, cn string, notBefore, notAfter time.Time) notarySigner {
	t.Helper()
	key := ecKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{Country: []string{"US"}, Organization: []string{"trainenv tests"}, CommonName: cn},
		NotBefore: notBefore, NotAfter: notAfter, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	if ca.crl != nil {
		tmpl.CRLDistributionPoints = []string{ca.crl.URL + "/ca.crl"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return notarySigner{ca: ca, cert: cert, key: key}
}

func (ca *notaryCA) validLeaf(t testing.TB, cn string) notarySigner {
	return ca.leaf(t, cn, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
}

// sign signs img (repository@digest) as `notation sign` does (JWS envelope) and pushes
// the signature as a referrer of the digest.
func (s notarySigner) sign(t testing.TB, img string, opts ...func(*notation.SignOptions)) {
	t.Helper()
	gs, err := nsigner.NewGenericSigner(s.key, []*x509.Certificate{s.cert, s.ca.cert})
	if err != nil {
		t.Fatal(err)
	}
	so := notation.SignOptions{SignerSignOptions: notation.SignerSignOptions{SignatureMediaType: jws.MediaTypeEnvelope}, ArtifactReference: img}
	for _, o := range opts {
		o(&so)
	}
	if _, err := notation.Sign(bg, gs, notaryRepo(t, img), so); err != nil {
		t.Fatal(err)
	}
}

// signedAt signs img as GenericSigner does, but at a time in the past: a signature made
// yesterday with a certificate that has expired since (GenericSigner signs only now, and
// notation refuses to sign with a certificate invalid at the signing time), or one whose
// own expiry (notation sign --expiry) has passed.
func (s notarySigner) signedAt(t testing.TB, img string, at time.Time, expiry time.Duration) {
	t.Helper()
	ls, err := signature.NewLocalSigner([]*x509.Certificate{s.cert, s.ca.cert}, s.key)
	if err != nil {
		t.Fatal(err)
	}
	so := notation.SignOptions{SignerSignOptions: notation.SignerSignOptions{SignatureMediaType: jws.MediaTypeEnvelope}, ArtifactReference: img}
	if _, err := notation.Sign(bg, pastSigner{ls, at, expiry}, notaryRepo(t, img), so); err != nil {
		t.Fatal(err)
	}
}

type pastSigner struct {
	signer signature.LocalSigner
	at     time.Time
	expiry time.Duration // the signature's own validity; 0: none
}

// Sign implements notation.Signer as signer.GenericSigner.Sign does, at p.at.
func (p pastSigner) Sign(_ context.Context, desc ocispec.Descriptor, opts notation.SignerSignOptions) ([]byte, *signature.SignerInfo, error) {
	payload, err := json.Marshal(map[string]ocispec.Descriptor{"targetArtifact": {MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size, Annotations: desc.Annotations}})
	if err != nil {
		return nil, nil, err
	}
	env, err := signature.NewEnvelope(opts.SignatureMediaType)
	if err != nil {
		return nil, nil, err
	}
	req := &signature.SignRequest{
		Payload: signature.Payload{ContentType: "application/vnd.cncf.notary.payload.v1+json", Content: payload},
		Signer:  p.signer, SigningTime: p.at, SigningScheme: signature.SigningSchemeX509, SigningAgent: "notation-go/1.3.2",
	}
	if p.expiry != 0 {
		req.Expiry = p.at.Add(p.expiry)
	}
	sig, err := env.Sign(req)
	if err != nil {
		return nil, nil, err
	}
	content, err := env.Verify()
	if err != nil {
		return nil, nil, err
	}
	return sig, &content.SignerInfo, nil
}

// notaryRepo is notation-go's registry access (oras) to img's repository, plain HTTP.
func notaryRepo(t testing.TB, img string) nregistry.Repository {
	t.Helper()
	repoName, _, _ := strings.Cut(img, "@")
	r, err := remote.NewRepository(repoName)
	if err != nil {
		t.Fatal(err)
	}
	r.PlainHTTP = true
	return nregistry.NewRepository(r)
}

// copySignatures attaches the Notation signatures of from (made for its digest) to to.
func copySignatures(t testing.TB, from, to string) {
	t.Helper()
	src, dst := notaryRepo(t, from), notaryRepo(t, to)
	fromDesc, err := src.Resolve(bg, from[strings.Index(from, "@")+1:])
	if err != nil {
		t.Fatal(err)
	}
	toDesc, err := dst.Resolve(bg, to[strings.Index(to, "@")+1:])
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = src.ListSignatures(bg, fromDesc, func(ms []ocispec.Descriptor) error {
		for _, m := range ms {
			blob, blobDesc, err := src.FetchSignatureBlob(bg, m)
			if err != nil {
				return err
			}
			if _, _, err := dst.PushSignature(bg, blobDesc.MediaType, blob, toDesc, nil); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("copying %d signatures: %v", n, err)
	}
}

// trustPolicy is a Notation trust policy document with one statement.
func trustPolicy(t testing.TB, name, level string, scopes []string, stores ...string) string {
	t.Helper()
	raw, err := json.Marshal(map[string]any{"version": "1.0", "trustPolicies": []map[string]any{{
		"name": name, "registryScopes": scopes, "signatureVerification": map[string]any{"level": level},
		"trustStores": stores, "trustedIdentities": []string{"*"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
