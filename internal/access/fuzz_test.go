package access_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/trainenv/trainenv/internal/access"
)

// FuzzParseAuthorizedKeys: authorized_keys comes from a user's Secret. It must never
// panic; an error names the line; success gives one fingerprint per key line.
func FuzzParseAuthorizedKeys(f *testing.F) {
	keys, err := access.GenerateHostKeys()
	if err != nil {
		f.Fatal(err)
	}
	ed, rsa := keys["ssh_host_ed25519_key.pub"], keys["ssh_host_rsa_key.pub"]
	for _, seed := range [][]byte{
		ed, append(append([]byte("# c\n\n"), ed...), rsa...), []byte(`from="10.0.0.0/8",no-pty ` + string(ed)),
		[]byte("ssh-ed25519 AAAA\n"), []byte(""), []byte("\x00\xff"), []byte("ssh-rsa " + strings.Repeat("A", 4000)),
		[]byte(`command="x\"y" ` + string(ed)), bytes.Repeat([]byte("\n"), 100),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fps, err := access.ParseAuthorizedKeys(data)
		if err != nil {
			if !errors.Is(err, access.ErrNoAuthorizedKeys) && !strings.HasPrefix(err.Error(), "line ") {
				t.Fatalf("error does not name the line: %v", err)
			}
			return
		}
		lines := 0
		for _, l := range bytes.Split(data, []byte("\n")) {
			if l = bytes.TrimSpace(l); len(l) > 0 && l[0] != '#' {
				lines++
			}
		}
		if len(fps) != lines {
			t.Fatalf("%d fingerprints for %d key lines", len(fps), lines)
		}
		for _, fp := range fps {
			if !strings.HasPrefix(fp, "SHA256:") {
				t.Fatalf("fingerprint %q", fp)
			}
		}
	})
}
