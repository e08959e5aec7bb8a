package access

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyComment is the comment in the generated keys, as ssh-keygen -l shows it.
const HostKeyComment = "trainenv"

// PublicKeyFile is the Secret key (and file name) of a host key's public half.
func PublicKeyFile(private string) string { return private + ".pub" }

// GenerateHostKeys returns the data of a host-key Secret: for each of HostKeyFiles the
// private key in OpenSSH format and, under PublicKeyFile, its authorized_keys-format
// public key. The operator generates them once per environment, so that they survive
// pod restarts and users can check them against status instead of trusting on first use.
func GenerateHostKeys() (map[string][]byte, error) {
	gens := map[string]func() (crypto.Signer, error){
		"ssh_host_ed25519_key": func() (crypto.Signer, error) {
			_, k, err := ed25519.GenerateKey(rand.Reader)
			return k, err
		},
		"ssh_host_ecdsa_key": func() (crypto.Signer, error) {
			return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		},
		"ssh_host_rsa_key": func() (crypto.Signer, error) {
			return rsa.GenerateKey(rand.Reader, 3072)
		},
	}
	data := make(map[string][]byte, 2*len(HostKeyFiles))
	for _, name := range HostKeyFiles {
		gen, ok := gens[name]
		if !ok {
			return nil, fmt.Errorf("no generator for host key %s", name)
		}
		key, err := gen()
		if err != nil {
			return nil, fmt.Errorf("generating %s: %w", name, err)
		}
		block, err := ssh.MarshalPrivateKey(key, HostKeyComment)
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", name, err)
		}
		pub, err := ssh.NewPublicKey(key.Public())
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", name, err)
		}
		data[name] = pem.EncodeToMemory(block)
		line := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(pub)), "\n")
		data[PublicKeyFile(name)] = []byte(line + " " + HostKeyComment + "\n")
	}
	return data, nil
}

// HostKeyFingerprint is one host key as `ssh-keygen -l` and ssh's own prompts show it.
type HostKeyFingerprint struct {
	// Type is the key type: ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa.
	Type string `json:"type"`
	// SHA256 is "SHA256:" and the unpadded base64 of the key's SHA-256.
	SHA256 string `json:"sha256"`
}

// Fingerprints returns the fingerprints of the host keys sshd serves (ServedHostKeyFiles,
// in that order) from the public keys in a host-key Secret's data; missing keys are
// skipped. These are what users compare with and what ssh shows.
func Fingerprints(secretData map[string][]byte) ([]HostKeyFingerprint, error) {
	keys, err := publicHostKeys(secretData)
	if err != nil {
		return nil, err
	}
	out := make([]HostKeyFingerprint, 0, len(keys))
	for _, k := range keys {
		out = append(out, HostKeyFingerprint{Type: k.Type(), SHA256: ssh.FingerprintSHA256(k)})
	}
	return out, nil
}

// KnownHostsLines returns known_hosts lines for the host keys sshd serves, from a
// host-key Secret's data, one per key, for the given host names: an ssh_config
// HostKeyAlias (a bare name) or "host:port" (written "[host]:port" as ssh looks non-22
// ports up).
func KnownHostsLines(hosts []string, secretData map[string][]byte) ([]string, error) {
	if len(hosts) == 0 {
		return nil, fmt.Errorf("known_hosts lines need at least one host name")
	}
	keys, err := publicHostKeys(secretData)
	if err != nil {
		return nil, err
	}
	lines := make([]string, 0, len(keys))
	for _, k := range keys {
		lines = append(lines, knownhosts.Line(hosts, k))
	}
	return lines, nil
}

func publicHostKeys(secretData map[string][]byte) ([]ssh.PublicKey, error) {
	var keys []ssh.PublicKey
	for _, name := range ServedHostKeyFiles {
		data, ok := secretData[PublicKeyFile(name)]
		if !ok {
			continue
		}
		k, _, _, _, err := ssh.ParseAuthorizedKey(data)
		if err != nil {
			return nil, fmt.Errorf("host key %s: %w", PublicKeyFile(name), err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no public host key (%s…) in the data", PublicKeyFile(ServedHostKeyFiles[0]))
	}
	return keys, nil
}

// TokenBytes is the entropy of a generated Jupyter token.
const TokenBytes = 32

// GenerateToken returns a random Jupyter token: TokenBytes of entropy, URL-safe base64
// without padding (43 characters), so it can sit in a URL's query unescaped.
func GenerateToken() (string, error) {
	b := make([]byte, TokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
