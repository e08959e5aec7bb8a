package access_test

import (
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/trainenv/trainenv/internal/access"
	rt "github.com/trainenv/trainenv/internal/testutil/realtools"
)

func TestGenerateHostKeys(t *testing.T) {
	data, err := access.GenerateHostKeys()
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != 2*len(access.HostKeyFiles) {
		t.Fatalf("got %d entries, want a private and a public key for each of %v", len(data), access.HostKeyFiles)
	}
	wantType := map[string]string{
		"ssh_host_ed25519_key": "ssh-ed25519",
		"ssh_host_ecdsa_key":   "ecdsa-sha2-nistp256",
		"ssh_host_rsa_key":     "ssh-rsa",
	}
	for _, name := range access.HostKeyFiles {
		signer, err := ssh.ParsePrivateKey(data[name])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		pub, comment, _, _, err := ssh.ParseAuthorizedKey(data[access.PublicKeyFile(name)])
		if err != nil {
			t.Fatalf("%s.pub: %v", name, err)
		}
		if string(pub.Marshal()) != string(signer.PublicKey().Marshal()) {
			t.Errorf("%s.pub is not the public half of %s", name, name)
		}
		if pub.Type() != wantType[name] || comment != access.HostKeyComment {
			t.Errorf("%s.pub: type %s comment %q, want %s %q", name, pub.Type(), comment, wantType[name], access.HostKeyComment)
		}
		if !strings.HasPrefix(string(data[name]), "-----BEGIN OPENSSH PRIVATE KEY-----") {
			t.Errorf("%s is not in OpenSSH format", name)
		}
	}
	if rsaKey, _, _, _, _ := ssh.ParseAuthorizedKey(data["ssh_host_rsa_key.pub"]); rsaKey != nil {
		if bits := rsaBits(t, rsaKey); bits != 3072 {
			t.Errorf("RSA host key has %d bits, want 3072", bits)
		}
	}
	again, err := access.GenerateHostKeys()
	if err != nil {
		t.Fatal(err)
	}
	if string(again["ssh_host_ed25519_key"]) == string(data["ssh_host_ed25519_key"]) {
		t.Error("two environments got the same host key")
	}
}

func rsaBits(t *testing.T, k ssh.PublicKey) int {
	t.Helper()
	ck, ok := k.(ssh.CryptoPublicKey)
	if !ok {
		t.Fatal("not a crypto key")
	}
	type sized interface{ Size() int }
	return ck.CryptoPublicKey().(sized).Size() * 8
}

// The fingerprints and the private keys are what OpenSSH's own ssh-keygen reads.
func TestHostKeysAgreeWithSSHKeygen(t *testing.T) {
	rt.Require(t, "ssh-keygen")
	data, err := access.GenerateHostKeys()
	if err != nil {
		t.Fatal(err)
	}
	fps, err := access.Fingerprints(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(fps) != len(access.ServedHostKeyFiles) {
		t.Fatalf("%d fingerprints for %d served keys", len(fps), len(access.ServedHostKeyFiles))
	}
	dir := t.TempDir()
	for i, name := range access.ServedHostKeyFiles {
		priv := filepath.Join(dir, name)
		if err := os.WriteFile(priv, data[name], 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(priv+".pub", data[access.PublicKeyFile(name)], 0o644); err != nil {
			t.Fatal(err)
		}
		// `ssh-keygen -l` prints "BITS SHA256:… COMMENT (TYPE)".
		out, code := rt.Run(exec.Command("ssh-keygen", "-l", "-E", "sha256", "-f", priv+".pub"))
		fields := strings.Fields(out)
		if code != 0 || len(fields) < 2 || fields[1] != fps[i].SHA256 {
			t.Errorf("%s: ssh-keygen -l says %q (exit %d), Fingerprints says %s", name, out, code, fps[i].SHA256)
		}
		// ssh-keygen -y derives the public key from the private one: the pair matches
		// and the private key is valid OpenSSH format.
		out, code = rt.Run(exec.Command("ssh-keygen", "-y", "-f", priv))
		if code != 0 || strings.Fields(out)[1] != strings.Fields(string(data[access.PublicKeyFile(name)]))[1] {
			t.Errorf("%s: ssh-keygen -y: exit %d %q", name, code, out)
		}
	}
}

func TestFingerprintFormat(t *testing.T) {
	data, err := access.GenerateHostKeys()
	if err != nil {
		t.Fatal(err)
	}
	fps, err := access.Fingerprints(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(fps) != 2 || fps[0].Type != "ssh-ed25519" || fps[1].Type != "ssh-rsa" {
		t.Fatalf("fingerprints %+v, want ed25519 then rsa: the keys sshd serves", fps)
	}
	delete(data, "ssh_host_rsa_key.pub")
	if fps, err := access.Fingerprints(data); err != nil || len(fps) != 1 {
		t.Errorf("without the RSA key: %+v %v, want the ed25519 one alone", fps, err)
	}
	for _, fp := range fps {
		raw, err := base64.RawStdEncoding.DecodeString(strings.TrimPrefix(fp.SHA256, "SHA256:"))
		if !strings.HasPrefix(fp.SHA256, "SHA256:") || err != nil || len(raw) != 32 {
			t.Errorf("fingerprint %q is not SHA256:<unpadded base64 of 32 bytes>", fp.SHA256)
		}
	}
	if _, err := access.Fingerprints(map[string][]byte{"ssh_host_ed25519_key.pub": []byte("not a key")}); err == nil {
		t.Error("a malformed public key was accepted")
	}
	if _, err := access.Fingerprints(nil); err == nil {
		t.Error("no keys at all was accepted")
	}
}

func TestKnownHostsLines(t *testing.T) {
	data, err := access.GenerateHostKeys()
	if err != nil {
		t.Fatal(err)
	}
	lines, err := access.KnownHostsLines([]string{"alice.trainenv", "127.0.0.1:2222", "localhost:22"}, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 {
		t.Fatalf("%d lines, want one per served key", len(lines))
	}
	for i, name := range access.ServedHostKeyFiles {
		pub := strings.Fields(string(data[access.PublicKeyFile(name)]))
		want := fmt.Sprintf("alice.trainenv,[127.0.0.1]:2222,localhost %s %s", pub[0], pub[1])
		if lines[i] != want {
			t.Errorf("line %d:\n got %s\nwant %s", i, lines[i], want)
		}
	}
	if _, err := access.KnownHostsLines(nil, data); err == nil {
		t.Error("no host names was accepted")
	}
}

func TestGenerateToken(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tok, err := access.GenerateToken()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(raw) < 32 || seen[tok] {
			t.Fatalf("token %q: %d bytes, err %v, repeated %v", tok, len(raw), err, seen[tok])
		}
		seen[tok] = true
	}
}

// The operator generates host keys once per environment, in its reconcile loop: RSA-3072
// key generation dominates (random-prime search, so its time varies from run to run).
func BenchmarkGenerateHostKeys(b *testing.B) {
	for b.Loop() {
		if _, err := access.GenerateHostKeys(); err != nil {
			b.Fatal(err)
		}
	}
}
