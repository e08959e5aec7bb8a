package access

import (
	"bytes"
	"errors"
	"fmt"

	"golang.org/x/crypto/ssh"
)

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
		key, _, _, _, err := ssh.ParseAuthorizedKey(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		fingerprints = append(fingerprints, ssh.FingerprintSHA256(key))
	}
	if len(fingerprints) == 0 {
		return nil, ErrNoAuthorizedKeys
	}
	return fingerprints, nil
}
