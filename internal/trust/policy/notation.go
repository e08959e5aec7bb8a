package policy

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/notaryproject/notation-core-go/revocation"
	"github.com/notaryproject/notation-core-go/revocation/crl"
	"github.com/notaryproject/notation-core-go/revocation/purpose"
	"github.com/notaryproject/notation-go"
	nverifier "github.com/notaryproject/notation-go/verifier"
	"github.com/notaryproject/notation-go/verifier/trustpolicy"
	"github.com/notaryproject/notation-go/verifier/truststore"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Notation (Notary Project) trust, given the Kubernetes way: one ConfigMap holds what the
// notation CLI keeps in its configuration directory, so that a platform team writes the
// same documents for both.
//
//   - key trustpolicy.json: the OCI trust policy document (version "1.0"), exactly as
//     `notation policy show` prints it: statements with registryScopes, a
//     signatureVerification level, trustStores ("ca:NAME", "signingAuthority:NAME",
//     "tsa:NAME") and trustedIdentities.
//   - one key per trust store, TYPE.NAME.pem (or .crt), holding the PEM certificates of
//     the store notation keeps in truststore/x509/TYPE/NAME/: `--from-file=ca.acme.pem=root.crt`.
//
// A statement whose registryScopes covers an image's repository (the exact repository,
// or "*"; a more specific statement wins, as in notation) is one more policy the digest
// must pass, next to the ClusterImagePolicies that match it: a digest both cover must
// satisfy both. A statement at level "skip" proves nothing, so it covers nothing: the
// ClusterImagePolicies alone decide (no policy at all is NoMatchingPolicy, fail closed).
// A ConfigMap that does not parse or validate fails every image closed (InvalidPolicy):
// nobody can tell which images it meant to cover.
const (
	NotationTrustPolicyKey = "trustpolicy.json"
	// notationArtifactType marks Notation signatures among a digest's OCI referrers.
	notationArtifactType = "application/vnd.cncf.notary.signature"
	// notationPolicyPrefix names a Notation statement among a verdict's policies.
	notationPolicyPrefix = "notation:"
)

// NotationSource supplies the Notation trust configuration: the ConfigMap's data, and
// a version that changes with it (nil data: no Notation trust configured).
type NotationSource interface {
	NotationTrust(ctx context.Context) (data map[string]string, version string, err error)
}

// ConfigMapNotationSource reads the Notation trust ConfigMap from the API server.
type ConfigMapNotationSource struct {
	// Reader reads the one ConfigMap; a direct reader (mgr.GetAPIReader()) needs only
	// get on it, by name, and the Verifier reads it at most once per FailureTTL.
	Reader          client.Reader
	Namespace, Name string
}

// +kubebuilder:rbac:groups="",namespace=trainenv-system,resources=configmaps,resourceNames=trainenv-notation,verbs=get

// NotationTrust implements NotationSource. A missing ConfigMap is no Notation trust.
func (s *ConfigMapNotationSource) NotationTrust(ctx context.Context) (map[string]string, string, error) {
	var cm corev1.ConfigMap
	if err := s.Reader.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Name}, &cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, "", nil
		}
		return nil, "", fmt.Errorf("reading the Notation trust ConfigMap %s/%s: %w", s.Namespace, s.Name, err)
	}
	return cm.Data, string(cm.UID) + "/" + cm.ResourceVersion, nil
}

// StaticNotationSource is fixed Notation trust, for tests and tools.
type StaticNotationSource map[string]string

// NotationTrust implements NotationSource.
func (s StaticNotationSource) NotationTrust(context.Context) (map[string]string, string, error) {
	if s == nil {
		return nil, "", nil
	}
	return s, "", nil
}

// notationTrust is the compiled configuration.
type notationTrust struct {
	doc      *trustpolicy.Document
	verifier notation.Verifier
	// version is a hash of the content: in the verdict cache key, so a changed trust
	// store or policy never reuses a verdict.
	version string
	err     error // invalid: every image fails closed

	mu     sync.Mutex
	byRepo map[string]*trustpolicy.TrustPolicy
}

// statement returns the statement that covers ref, or nil. notation's matching parses the
// reference and copies the statement each time (most of the cost of a cached verdict), and
// the answer depends on the repository alone: remembered per repository.
func (nt *notationTrust) statement(ref name.Digest) *trustpolicy.TrustPolicy {
	if nt == nil || nt.doc == nil {
		return nil
	}
	repo := ref.Context().Name()
	nt.mu.Lock()
	st, ok := nt.byRepo[repo]
	nt.mu.Unlock()
	if ok {
		return st
	}
	st = nt.match(ref.String())
	nt.mu.Lock()
	if nt.byRepo == nil || len(nt.byRepo) >= maxMatchMemo {
		nt.byRepo = map[string]*trustpolicy.TrustPolicy{}
	}
	nt.byRepo[repo] = st
	nt.mu.Unlock()
	return st
}

func (nt *notationTrust) match(ref string) *trustpolicy.TrustPolicy {
	st, err := nt.doc.GetApplicableTrustPolicy(ref)
	if err != nil {
		return nil
	}
	level, err := st.SignatureVerification.GetVerificationLevel()
	if err != nil || reflect.DeepEqual(level, trustpolicy.LevelSkip) {
		return nil
	}
	return st
}

// memTrustStore is notation's X509TrustStore over the ConfigMap's certificates, checked
// as notation checks the files of its trust store directory.
type memTrustStore map[string][]*x509.Certificate // "TYPE:NAME" -> certificates

func (m memTrustStore) GetCertificates(_ context.Context, t truststore.Type, name string) ([]*x509.Certificate, error) {
	certs, ok := m[string(t)+":"+name]
	if !ok {
		return nil, truststore.TrustStoreError{Msg: fmt.Sprintf("the trust store %q of type %q does not exist (no key %s.%s.pem in the Notation ConfigMap)", name, t, t, name)}
	}
	return certs, nil
}

// compileNotation parses and validates the configuration. revocationClient fetches CRLs
// and asks OCSP responders; nil data is no Notation trust.
func compileNotation(data map[string]string, revocationClient *http.Client) *notationTrust {
	if data == nil {
		return nil
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%d:%s%d:%s", len(k), k, len(data[k]), data[k])
	}
	nt := &notationTrust{version: hex.EncodeToString(h.Sum(nil)[:8])}
	fail := func(err error) *notationTrust {
		nt.err = fmt.Errorf("%w: the Notation trust configuration: %w", errInvalid, err)
		return nt
	}
	raw, ok := data[NotationTrustPolicyKey]
	if !ok {
		return fail(fmt.Errorf("no key %s", NotationTrustPolicyKey))
	}
	var doc trustpolicy.Document
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return fail(fmt.Errorf("%s: %w", NotationTrustPolicyKey, err))
	}
	if err := doc.Validate(); err != nil {
		return fail(fmt.Errorf("%s: %w", NotationTrustPolicyKey, err))
	}
	store := memTrustStore{}
	for _, k := range keys {
		if k == NotationTrustPolicyKey {
			continue
		}
		t, name, err := storeKey(k)
		if err != nil {
			return fail(err)
		}
		certs, err := pemCertificates(data[k])
		if err != nil {
			return fail(fmt.Errorf("key %s: %w", k, err))
		}
		if len(certs) == 0 {
			return fail(fmt.Errorf("key %s holds no PEM certificate", k))
		}
		if err := truststore.ValidateCertificates(certs); err != nil {
			return fail(fmt.Errorf("key %s: %w", k, err))
		}
		store[string(t)+":"+name] = append(store[string(t)+":"+name], certs...)
	}
	for _, st := range doc.TrustPolicies {
		for _, ts := range st.TrustStores {
			if _, ok := store[ts]; !ok {
				return fail(fmt.Errorf("statement %s names trust store %s, which has no key %s.pem", st.Name, ts, strings.Replace(ts, ":", ".", 1)))
			}
		}
	}
	codeSigning, err := revocation.NewWithOptions(revocationOptions(revocationClient, purpose.CodeSigning))
	if err != nil {
		return fail(err)
	}
	timestamping, err := revocation.NewWithOptions(revocationOptions(revocationClient, purpose.Timestamping))
	if err != nil {
		return fail(err)
	}
	v, err := nverifier.NewWithOptions(&doc, store, nil, nverifier.VerifierOptions{
		RevocationCodeSigningValidator: codeSigning, RevocationTimestampingValidator: timestamping})
	if err != nil {
		return fail(err)
	}
	nt.doc, nt.verifier = &doc, v
	return nt
}

func revocationOptions(c *http.Client, p purpose.Purpose) revocation.Options {
	f, _ := crl.NewHTTPFetcher(c) // fails only for a nil client
	return revocation.Options{OCSPHTTPClient: c, CRLFetcher: f, CertChainPurpose: p}
}

// storeKey splits a ConfigMap key TYPE.NAME.pem into the trust store it fills.
func storeKey(k string) (truststore.Type, string, error) {
	base, ok := strings.CutSuffix(k, ".pem")
	if !ok {
		base, ok = strings.CutSuffix(k, ".crt")
	}
	t, name, found := strings.Cut(base, ".")
	if !ok || !found || name == "" {
		return "", "", fmt.Errorf("key %s is neither %s nor a trust store TYPE.NAME.pem", k, NotationTrustPolicyKey)
	}
	for _, known := range truststore.Types {
		if string(known) == t {
			return known, name, nil
		}
	}
	return "", "", fmt.Errorf("key %s: trust store type %q is none of ca, signingAuthority, tsa", k, t)
}

// notationStore keeps the compiled configuration, re-reading the source at most every
// refresh and compiling only when its version changed.
type notationStore struct {
	src        NotationSource
	refresh    time.Duration
	now        func() time.Time
	revocation *http.Client

	mu   sync.Mutex
	nt   *notationTrust
	ver  string
	read time.Time
	have bool
}

func (s *notationStore) current(ctx context.Context) (*notationTrust, error) {
	if s == nil || s.src == nil {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.have && s.now().Sub(s.read) < s.refresh {
		return s.nt, nil
	}
	data, ver, err := s.src.NotationTrust(ctx)
	if err != nil {
		return nil, err
	}
	if !s.have || ver == "" || ver != s.ver {
		s.nt = compileNotation(data, s.revocation)
	}
	s.ver, s.read, s.have = ver, s.now(), true
	return s.nt, nil
}

var errNoNotationSignature = errors.New("no Notation signature is attached as an OCI referrer")

// pemCertificates parses every CERTIFICATE block of a PEM text; anything else is an error.
func pemCertificates(text string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := []byte(text)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("a PEM block of type %s, not CERTIFICATE", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("text that is not PEM after the certificates")
	}
	return certs, nil
}
