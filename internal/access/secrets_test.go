package access_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/trainenv/trainenv/internal/access"
)

func TestHostKeysAreOpenSSHKeysWithMatchingFingerprints(t *testing.T) {
	g := NewWithT(t)
	data, err := access.NewHostKeySecretData()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(data).To(HaveLen(2 * len(access.HostKeyFiles)))

	types := map[string]string{}
	for _, name := range access.HostKeyFiles {
		g.Expect(string(data[name])).To(HavePrefix("-----BEGIN OPENSSH PRIVATE KEY-----"))
		signer, err := ssh.ParsePrivateKey(data[name])
		g.Expect(err).NotTo(HaveOccurred())
		types[name] = signer.PublicKey().Type()
	}
	g.Expect(types).To(Equal(map[string]string{
		"ssh_host_ed25519_key": "ssh-ed25519",
		"ssh_host_ecdsa_key":   "ecdsa-sha2-nistp256",
		"ssh_host_rsa_key":     "ssh-rsa",
	}))

	fps, err := access.HostKeyFingerprints(data)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(fps).To(HaveLen(3))
	g.Expect(fps[0]).To(MatchRegexp(`^ssh-ed25519 SHA256:[A-Za-z0-9+/]{43}$`))

	// OpenSSH's own ssh-keygen reads the private keys and agrees on the fingerprints.
	if _, err := exec.LookPath("ssh-keygen"); err == nil {
		dir := t.TempDir()
		for i, name := range access.HostKeyFiles {
			path := filepath.Join(dir, name)
			g.Expect(os.WriteFile(path, data[name], 0o600)).To(Succeed())
			out, err := exec.Command("ssh-keygen", "-l", "-E", "sha256", "-f", path).CombinedOutput()
			g.Expect(err).NotTo(HaveOccurred(), string(out))
			g.Expect(string(out)).To(ContainSubstring(strings.Fields(fps[i])[1]))
		}
	}
}

func TestKnownHostsLineVerifiesTheHostKeysUnderTheAlias(t *testing.T) {
	g := NewWithT(t)
	data, err := access.NewHostKeySecretData()
	g.Expect(err).NotTo(HaveOccurred())
	line, err := access.KnownHostsLine("trainenv.ml.alice", data)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(strings.Split(line, "\n")).To(HaveLen(3))

	for _, name := range access.HostKeyFiles {
		pub, _, _, _, err := ssh.ParseAuthorizedKey(data[name+".pub"])
		g.Expect(err).NotTo(HaveOccurred())
		found := false
		for _, l := range strings.Split(line, "\n") {
			_, hosts, key, _, _, err := ssh.ParseKnownHosts([]byte(l))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(hosts).To(Equal([]string{"trainenv.ml.alice"}))
			found = found || string(key.Marshal()) == string(pub.Marshal())
		}
		g.Expect(found).To(BeTrue(), name)
	}
}

func TestFingerprintsRejectMismatchedKeys(t *testing.T) {
	g := NewWithT(t)
	a, err := access.NewHostKeySecretData()
	g.Expect(err).NotTo(HaveOccurred())
	b, err := access.NewHostKeySecretData()
	g.Expect(err).NotTo(HaveOccurred())
	a["ssh_host_ed25519_key.pub"] = b["ssh_host_ed25519_key.pub"]
	_, err = access.HostKeyFingerprints(a)
	g.Expect(err).To(MatchError(ContainSubstring("does not belong")))
	delete(a, "ssh_host_rsa_key")
	_, err = access.KnownHostsLine("x", a)
	g.Expect(err).To(HaveOccurred())
}

func TestNewTokenIsLongAndRandom(t *testing.T) {
	g := NewWithT(t)
	a, err := access.NewToken()
	g.Expect(err).NotTo(HaveOccurred())
	b, err := access.NewToken()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(a).To(MatchRegexp(`^[0-9a-f]{64}$`))
	g.Expect(a).NotTo(Equal(b))
}

func TestParseAuthorizedKeys(t *testing.T) {
	g := NewWithT(t)
	data, err := access.NewHostKeySecretData()
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
