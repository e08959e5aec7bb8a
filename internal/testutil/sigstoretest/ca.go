// Package sigstoretest is a private Sigstore for offline tests: a Fulcio-like certificate
// authority (root and intermediate) that issues short-lived code-signing certificates
// naming an OIDC issuer and a subject, a certificate-transparency log whose signed
// certificate timestamp (SCT) is embedded in each certificate as Fulcio embeds its CT log's,
// and the policy-controller TrustRoot (sigstoreKeys) that makes a keyless
// ClusterImagePolicy authority trust exactly this CA and CT log.
package sigstoretest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// oidcIssuerV1 is Fulcio's certificate extension holding the OIDC issuer as raw bytes
// (1.3.6.1.4.1.57264.1.1), which cosign and policy-controller read.
var oidcIssuerV1 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}

// Identity is what a keyless certificate attests: who (Subject, the certificate's SAN: an
// email or a URI such as a CI workflow) was authenticated by which OIDC Issuer.
type Identity struct {
	Issuer, Subject string
}

// Sigstore is one private Sigstore instance.
type Sigstore struct {
	Root, Intermediate       *x509.Certificate
	rootKey, intermediateKey *ecdsa.PrivateKey
	// ctLog signs the SCTs embedded in issued certificates.
	ctLog *ecdsa.PrivateKey
	now   time.Time
}

// New creates a CA (root and intermediate, as Fulcio has) and a CT log key.
func New(t testing.TB) *Sigstore {
	t.Helper()
	s := &Sigstore{now: time.Now(), rootKey: newKey(t), intermediateKey: newKey(t), ctLog: newKey(t)}
	root := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "trainenv-test-fulcio", Organization: []string{"trainenv.test"}},
		NotBefore:    s.now.Add(-time.Hour), NotAfter: s.now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true,
	}
	s.Root = create(t, root, root, &s.rootKey.PublicKey, s.rootKey)
	intermediate := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "trainenv-test-fulcio-intermediate", Organization: []string{"trainenv.test"}},
		NotBefore:    s.now.Add(-time.Hour), NotAfter: s.now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true, IsCA: true,
	}
	s.Intermediate = create(t, intermediate, s.Root, &s.intermediateKey.PublicKey, s.rootKey)
	return s
}

// Cert is an issued signing certificate and its private key.
type Cert struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// IssueOption changes how a certificate is issued.
type IssueOption func(*issue)

type issue struct {
	sct   bool
	ctLog *ecdsa.PrivateKey
	pub   *ecdsa.PublicKey
}

// WithoutSCT issues a certificate that no CT log has seen (no embedded SCT).
func WithoutSCT() IssueOption { return func(i *issue) { i.sct = false } }

// WithSCTFrom embeds an SCT signed by another CT log key than the trusted one.
func WithSCTFrom(key *ecdsa.PrivateKey) IssueOption { return func(i *issue) { i.ctLog = key } }

// ForKey issues the certificate for pub, whose private key the caller may not have (e.g. a
// TwinKey); the returned Cert's Key is then nil.
func ForKey(pub *ecdsa.PublicKey) IssueOption { return func(i *issue) { i.pub = pub } }

// Issue returns a 10-minute code-signing certificate for id, from the intermediate, with
// an embedded SCT from the CT log, the way Fulcio issues one after an OIDC login.
func (s *Sigstore) Issue(t testing.TB, id Identity, opts ...IssueOption) Cert {
	t.Helper()
	in := issue{sct: true, ctLog: s.ctLog}
	for _, o := range opts {
		o(&in)
	}
	var key *ecdsa.PrivateKey
	pub := in.pub
	if pub == nil {
		key = newKey(t)
		pub = &key.PublicKey
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(s.now.UnixNano()),
		NotBefore:    s.now.Add(-time.Minute), NotAfter: s.now.Add(10 * time.Minute),
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{{Id: oidcIssuerV1, Value: []byte(id.Issuer)}},
	}
	if strings.Contains(id.Subject, "://") {
		u, err := url.Parse(id.Subject)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = []*url.URL{u}
	} else {
		tmpl.EmailAddresses = []string{id.Subject}
	}
	if in.sct {
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, embeddedSCT(t, tmpl, s, pub, in.ctLog))
	}
	return Cert{Cert: create(t, tmpl, s.Intermediate, pub, s.intermediateKey), Key: key}
}

// NewKey returns a fresh P-256 key (e.g. a CT log the TrustRoot does not name).
func NewKey(t testing.TB) *ecdsa.PrivateKey { return newKey(t) }

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func create(t testing.TB, tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// PublicKeyPEM returns the PEM of a fresh P-256 public key: a key authority's data when
// nothing is signed with it.
func PublicKeyPEM(t testing.TB) string {
	t.Helper()
	pem, err := cryptoutils.MarshalPublicKeyToPEM(newKey(t).Public())
	if err != nil {
		t.Fatal(err)
	}
	return string(pem)
}
