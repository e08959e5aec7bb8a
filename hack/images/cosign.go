package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// cosignCLI signs and attests with the cosign CLI (v2, the version the Makefile installs) and
// a key pair kept in the state directory: the dev signing key of one cluster. Signatures are
// in cosign's legacy format (the .sig and .att tags), without a transparency log: that is
// what trainenv's key authorities verify offline.
type cosignCLI struct {
	bin, dir string // dir holds cosign.key and cosign.pub
	insecure bool
	log      func(format string, args ...any)
}

const (
	predicateSPDX = "spdxjson"       // https://spdx.dev/Document
	predicateSLSA = "slsaprovenance" // https://slsa.dev/provenance/v0.2
)

func (c cosignCLI) Key() string    { return filepath.Join(c.dir, "cosign.key") }
func (c cosignCLI) PubKey() string { return filepath.Join(c.dir, "cosign.pub") }

// ensureKey generates the key pair unless the state directory has one.
func (c cosignCLI) ensureKey() error {
	_, errKey := os.Stat(c.Key())
	_, errPub := os.Stat(c.PubKey())
	if errKey == nil && errPub == nil {
		return nil
	}
	if errKey == nil || errPub == nil {
		return fmt.Errorf("%s holds only half of a key pair (cosign.key, cosign.pub): remove it or restore the other half", c.dir)
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return err
	}
	c.log("generating the signing key pair %s", c.PubKey())
	_, err := c.run("generate-key-pair", "--output-key-prefix", "cosign")
	return err
}

func (c cosignCLI) run(args ...string) (string, error) {
	cmd := exec.Command(c.bin, args...)
	cmd.Dir = c.dir
	// The dev key has an empty password; TUF_ROOT keeps cosign's cache out of $HOME.
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=", "TUF_ROOT="+filepath.Join(c.dir, "tuf"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("cosign %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (c cosignCLI) registryFlags() []string {
	if c.insecure {
		return []string{"--allow-insecure-registry"}
	}
	return nil
}

// sign signs ref (repo@digest) unless a signature by the key is already there: signing is
// not idempotent (each ECDSA signature differs) and a warm rebuild must not pile them up.
func (c cosignCLI) sign(ref string) error {
	if c.verified("verify", ref) {
		c.log("%s: already signed by %s", ref, c.PubKey())
		return nil
	}
	args := append([]string{"sign", "--key", c.Key(), "--tlog-upload=false", "--yes"}, c.registryFlags()...)
	_, err := c.run(append(args, ref)...)
	return err
}

// attest attaches predicate (written to a file in dir) as an in-toto attestation of type
// typ, replacing any earlier one of that type, unless one signed by the key is there.
func (c cosignCLI) attest(ref, typ string, predicate any, dir string) error {
	if c.verified("verify-attestation", ref, "--type", typ) {
		c.log("%s: %s attestation already there", ref, typ)
		return nil
	}
	b, err := json.MarshalIndent(predicate, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, typ+".json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return err
	}
	args := append([]string{"attest", "--key", c.Key(), "--type", typ, "--predicate", path,
		"--replace", "--tlog-upload=false", "--yes"}, c.registryFlags()...)
	_, err = c.run(append(args, ref)...)
	return err
}

func (c cosignCLI) verified(cmd, ref string, extra ...string) bool {
	args := append([]string{cmd, "--key", c.PubKey(), "--insecure-ignore-tlog=true"}, c.registryFlags()...)
	args = append(append(args, extra...), ref)
	_, err := c.run(args...)
	return err == nil
}
