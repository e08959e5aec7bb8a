package access

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// What the operator generates for an environment and keeps in Secrets of its own: the SSH
// host keys (once per environment, so that they survive pod restarts and users never see
// a trust-on-first-use prompt) and the Jupyter token.

// TokenKey is the key of the Jupyter token in its Secret (and the default of
// spec.jupyter.tokenSecretRef.key).
const TokenKey = "token"

// tokenBytes is the entropy of a generated Jupyter token.
const tokenBytes = 32

// rsaBits is the size of the RSA host key, for clients that offer nothing newer.
const rsaBits = 3072

// NewHostKeySecretData generates one host key per algorithm of HostKeyFiles (ed25519,
// ECDSA P-256, RSA 3072): each private key in OpenSSH format under its file name, each
// public key in authorized_keys format under the same name + ".pub".
func NewHostKeySecretData() (map[string][]byte, error) {
	data := make(map[string][]byte, 2*len(HostKeyFiles))
	for _, name := range HostKeyFiles {
		key, err := newHostKey(name)
		if err != nil {
			return nil, fmt.Errorf("generating %s: %w", name, err)
		}
		block, err := ssh.MarshalPrivateKey(key, "")
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", name, err)
		}
		signer, err := ssh.NewSignerFromKey(key)
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", name, err)
		}
		data[name] = pem.EncodeToMemory(block)
		data[name+".pub"] = ssh.MarshalAuthorizedKey(signer.PublicKey())
	}
	return data, nil
}

func newHostKey(name string) (crypto.PrivateKey, error) {
	switch name {
	case "ssh_host_ed25519_key":
		_, key, err := ed25519.GenerateKey(rand.Reader)
		return key, err
	case "ssh_host_ecdsa_key":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ssh_host_rsa_key":
		return rsa.GenerateKey(rand.Reader, rsaBits)
	}
	return nil, fmt.Errorf("no algorithm for host key file %q", name)
}

// hostPublicKeys parses the public host keys of a host-key Secret, in HostKeyFiles order,
// and checks that each matches its private key.
func hostPublicKeys(data map[string][]byte) ([]ssh.PublicKey, error) {
	keys := make([]ssh.PublicKey, 0, len(HostKeyFiles))
	for _, name := range HostKeyFiles {
		pub, _, _, _, err := ssh.ParseAuthorizedKey(data[name+".pub"])
		if err != nil {
			return nil, fmt.Errorf("host key %s.pub: %w", name, err)
		}
		signer, err := ssh.ParsePrivateKey(data[name])
		if err != nil {
			return nil, fmt.Errorf("host key %s: %w", name, err)
		}
		if !bytes.Equal(signer.PublicKey().Marshal(), pub.Marshal()) {
			return nil, fmt.Errorf("host key %s.pub does not belong to %s", name, name)
		}
		keys = append(keys, pub)
	}
	return keys, nil
}

// HostKeyFingerprints returns "TYPE SHA256:..." for each host key of a host-key Secret, as
// `ssh-keygen -lf` and sshd's logs show them.
func HostKeyFingerprints(data map[string][]byte) ([]string, error) {
	keys, err := hostPublicKeys(data)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.Type() + " " + ssh.FingerprintSHA256(k)
	}
	return out, nil
}

// KnownHostsLine returns the known_hosts entries (one line per host key, newline-separated,
// no trailing newline) that let `ssh -o HostKeyAlias=alias` verify the environment.
func KnownHostsLine(alias string, data map[string][]byte) (string, error) {
	keys, err := hostPublicKeys(data)
	if err != nil {
		return "", err
	}
	lines := make([]string, len(keys))
	for i, k := range keys {
		lines[i] = knownhosts.Line([]string{alias}, k)
	}
	return strings.Join(lines, "\n"), nil
}

// NewToken returns a random Jupyter token: 32 bytes from the system's CSPRNG, hex-encoded.
func NewToken() (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// ErrNoAuthorizedKeys is returned by ParseAuthorizedKeys for a file without any key.
var ErrNoAuthorizedKeys = errors.New("no public key in the authorized_keys file")

// ParseAuthorizedKeys checks an authorized_keys file as sshd would read it (blank lines
// and # comments allowed) and returns its keys' fingerprints. A line that does not parse
// is an error naming the line, so that the user can fix the Secret.
func ParseAuthorizedKeys(data []byte) ([]string, error) {
	var fingerprints []string
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		key, _, _, rest, err := ssh.ParseAuthorizedKey(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		if len(bytes.TrimSpace(rest)) > 0 {
			return nil, fmt.Errorf("line %d: unexpected data after the key", i+1)
		}
		fingerprints = append(fingerprints, ssh.FingerprintSHA256(key))
	}
	if len(fingerprints) == 0 {
		return nil, ErrNoAuthorizedKeys
	}
	return fingerprints, nil
}
