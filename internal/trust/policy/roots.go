package policy

import (
	"context"
	"fmt"

	"github.com/sigstore/policy-controller/pkg/apis/config"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	"github.com/sigstore/policy-controller/pkg/reconciler/trustroot"
	"github.com/sigstore/policy-controller/pkg/tuf"
	"knative.dev/pkg/apis"
)

// compiledRoot is a TrustRoot turned into the Sigstore keys that policy-controller's
// engine reads from its context, the way policy-controller's tester does it.
type compiledRoot struct {
	version string
	keys    *config.SigstoreKeys
	// err is an invalid TrustRoot (InvalidPolicy for the policies that use it) ...
	err error
	// ... and fetchErr a TUF remote that could not be reached (retried, never cached).
	fetchErr error
}

func compileRoot(ctx context.Context, in *pcv1alpha1.TrustRoot) *compiledRoot {
	r := &compiledRoot{version: fmt.Sprintf("%s/%d", in.UID, in.Generation)}
	tr := in.DeepCopy()
	tr.SetDefaults(ctx)
	if fe := tr.Validate(ctx); fe != nil {
		if e := fe.Filter(apis.ErrorLevel); e != nil {
			r.err = fmt.Errorf("%w: TrustRoot %s: %w", errInvalid, in.Name, e)
			return r
		}
	}
	switch {
	case tr.Spec.SigstoreKeys != nil:
		r.keys, r.err = config.ConvertSigstoreKeys(ctx, tr.Spec.SigstoreKeys)
	case tr.Spec.Repository != nil:
		repo := tr.Spec.Repository
		client, err := tuf.ClientFromSerializedMirror(ctx, repo.MirrorFS, repo.Root, repo.Targets, pcv1alpha1.DefaultTUFRepoPrefix)
		if err != nil {
			r.err = err
			break
		}
		r.keys, r.err = trustroot.GetSigstoreKeysFromTuf(ctx, client, "")
	case tr.Spec.Remote != nil:
		remote := tr.Spec.Remote
		client, err := tuf.ClientFromRemote(ctx, remote.Mirror.String(), remote.Root, remote.Targets)
		if err != nil {
			r.fetchErr = fmt.Errorf("TrustRoot %s: fetching TUF repository %s: %w", in.Name, remote.Mirror.String(), err)
			return r
		}
		r.keys, r.err = trustroot.GetSigstoreKeysFromTuf(ctx, client, "")
	default:
		r.err = fmt.Errorf("no sigstoreKeys, repository or remote")
	}
	if r.err != nil {
		r.err = fmt.Errorf("%w: TrustRoot %s: %w", errInvalid, in.Name, r.err)
	}
	return r
}
