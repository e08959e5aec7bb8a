package sigstoretest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/asn1"
	"math/big"
	"testing"
)

// TwinKey returns a second P-256 public key, not pub, under which the same ECDSA signature
// sig of digest verifies. ECDSA public-key recovery finds two keys per signature, one for
// each curve point R whose x coordinate is the signature's r: Q = r⁻¹(s·R − e·G). One of
// them is pub; the other lets a test build a transparency-log entry that names this very
// signature and digest and that the log would accept (it verifies), but another signer's
// key, so that a verifier can refuse it only by comparing the key.
//
// It uses crypto/elliptic's deprecated point arithmetic: the newer APIs do not expose
// arbitrary point addition, and speed does not matter here.
func TwinKey(t testing.TB, pub *ecdsa.PublicKey, digest, sig []byte) *ecdsa.PublicKey {
	t.Helper()
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(sig, &rs); err != nil {
		t.Fatal(err)
	}
	curve := elliptic.P256()
	p, n := curve.Params().P, curve.Params().N
	x := rs.R // the R with x = r + n exists with probability ~2⁻¹²⁸; not handled
	// y² = x³ − 3x + b (mod p); p ≡ 3 (mod 4), so y = (y²)^((p+1)/4).
	y2 := new(big.Int).Exp(x, big.NewInt(3), p)
	y2.Sub(y2, new(big.Int).Mul(x, big.NewInt(3)))
	y2.Add(y2, curve.Params().B).Mod(y2, p)
	y := new(big.Int).Exp(y2, new(big.Int).Rsh(new(big.Int).Add(p, big.NewInt(1)), 2), p)
	if new(big.Int).Exp(y, big.NewInt(2), p).Cmp(y2) != 0 {
		t.Fatal("TwinKey: r is not the x coordinate of a curve point")
	}
	rInv := new(big.Int).ModInverse(x, n)
	e := new(big.Int).SetBytes(digest) // SHA-256 is as long as n: no truncation
	u1 := new(big.Int).Neg(e)
	u1.Mul(u1, rInv).Mod(u1, n)
	u2 := new(big.Int).Mul(rs.S, rInv)
	u2.Mod(u2, n)
	gx, gy := curve.ScalarBaseMult(u1.Bytes()) //nolint:staticcheck // deprecated on purpose: see the doc comment
	var twin *ecdsa.PublicKey
	found := false
	for _, ry := range []*big.Int{y, new(big.Int).Sub(p, y)} {
		rx, ryy := curve.ScalarMult(x, ry, u2.Bytes()) //nolint:staticcheck // deprecated on purpose: see the doc comment
		qx, qy := curve.Add(gx, gy, rx, ryy)           //nolint:staticcheck // deprecated on purpose: see the doc comment
		//nolint:staticcheck // a key from raw coordinates, as above
		if q := (&ecdsa.PublicKey{Curve: curve, X: qx, Y: qy}); q.Equal(pub) {
			found = true
		} else {
			twin = q
		}
	}
	if !found || twin == nil || !ecdsa.VerifyASN1(twin, digest, sig) {
		t.Fatal("TwinKey: recovery did not give pub and a second key that verifies the signature")
	}
	return twin
}
