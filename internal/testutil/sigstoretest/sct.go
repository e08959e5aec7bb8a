package sigstoretest

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
)

// embeddedSCT does what Fulcio and its CT log do together (RFC 6962 s3): issue a
// precertificate (tmpl plus the critical poison extension), have the log sign a timestamp
// over its TBS without the poison and over the issuer's key hash, and return the SCT list
// extension that the final certificate carries in the poison's place. The final TBS minus
// that extension is then byte for byte the TBS the log signed, which is what cosign checks.
func embeddedSCT(t testing.TB, tmpl *x509.Certificate, s *Sigstore, pub *ecdsa.PublicKey, log *ecdsa.PrivateKey) pkix.Extension {
	t.Helper()
	pre := *tmpl
	pre.ExtraExtensions = append(append([]pkix.Extension(nil), tmpl.ExtraExtensions...),
		pkix.Extension{Id: asn1.ObjectIdentifier(ctx509.OIDExtensionCTPoison), Critical: true, Value: asn1.NullBytes})
	precert := create(t, &pre, s.Intermediate, pub, s.intermediateKey)
	tbs, err := ctx509.BuildPrecertTBS(precert.RawTBSCertificate, nil)
	if err != nil {
		t.Fatal(err)
	}
	logDER, err := x509.MarshalPKIXPublicKey(&log.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sct := ct.SignedCertificateTimestamp{
		SCTVersion: ct.V1,
		LogID:      ct.LogID{KeyID: sha256.Sum256(logDER)},
		Timestamp:  uint64(s.now.UnixMilli()),
	}
	leaf := ct.MerkleTreeLeaf{
		Version:  ct.V1,
		LeafType: ct.TimestampedEntryLeafType,
		TimestampedEntry: &ct.TimestampedEntry{
			EntryType: ct.PrecertLogEntryType,
			Timestamp: sct.Timestamp,
			PrecertEntry: &ct.PreCert{
				IssuerKeyHash:  sha256.Sum256(s.Intermediate.RawSubjectPublicKeyInfo),
				TBSCertificate: tbs,
			},
		},
	}
	input, err := ct.SerializeSCTSignatureInput(sct, ct.LogEntry{Leaf: leaf})
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(input)
	sig, err := ecdsa.SignASN1(rand.Reader, log, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sct.Signature = ct.DigitallySigned{
		Algorithm: cttls.SignatureAndHashAlgorithm{Hash: cttls.SHA256, Signature: cttls.ECDSA},
		Signature: sig,
	}
	one, err := cttls.Marshal(sct)
	if err != nil {
		t.Fatal(err)
	}
	list, err := cttls.Marshal(ctx509.SignedCertificateTimestampList{SCTList: []ctx509.SerializedSCT{{Val: one}}})
	if err != nil {
		t.Fatal(err)
	}
	value, err := asn1.Marshal(list) // an OCTET STRING holding the TLS-encoded list
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier(ctx509.OIDExtensionCTSCT), Value: value}
}
