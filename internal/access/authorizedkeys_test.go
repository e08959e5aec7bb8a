package access_test

import (
	"testing"

	. "github.com/onsi/gomega"

	"github.com/trainenv/trainenv/internal/access"
)

func TestParseAuthorizedKeys(t *testing.T) {
	g := NewWithT(t)
	data, err := access.GenerateHostKeys()
	g.Expect(err).NotTo(HaveOccurred())
	good := "# alice's laptop\n\n" + string(data["ssh_host_ed25519_key.pub"]) +
		`from="10.0.0.0/8",no-agent-forwarding ` + string(data["ssh_host_rsa_key.pub"])
	fps, err := access.ParseAuthorizedKeys([]byte(good))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(fps).To(HaveLen(2))

	_, err = access.ParseAuthorizedKeys([]byte("# nothing\n\n"))
	g.Expect(err).To(MatchError(access.ErrNoAuthorizedKeys))
	_, err = access.ParseAuthorizedKeys([]byte(good + "ssh-ed25519 not-base64!\n"))
	g.Expect(err).To(MatchError(HavePrefix("line 5:")))
}
