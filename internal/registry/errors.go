package registry

import (
	"errors"
	"net/http"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Kind classifies a registry failure so that the controller can pick a condition reason.
type Kind int

const (
	// KindUnavailable: the registry could not be reached or answered with a server error.
	KindUnavailable Kind = iota
	// KindNotFound: no such repository, tag or digest.
	KindNotFound
	// KindUnauthorized: credentials missing or refused.
	KindUnauthorized
	// KindPlatformNotFound: a multi-platform image lacks the requested platform.
	KindPlatformNotFound
)

// Error is a failed resolution with its kind. Its message is the registry's own.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// classify wraps err with the kind its HTTP status or registry error code implies.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusNotFound:
			return &Error{Kind: KindNotFound, Err: err}
		case http.StatusUnauthorized, http.StatusForbidden:
			return &Error{Kind: KindUnauthorized, Err: err}
		}
		for _, d := range terr.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				return &Error{Kind: KindNotFound, Err: err}
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return &Error{Kind: KindUnauthorized, Err: err}
			}
		}
	}
	return &Error{Kind: KindUnavailable, Err: err}
}

// KindOf returns the kind of a resolution error (KindUnavailable for unknown errors).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindUnavailable
}
