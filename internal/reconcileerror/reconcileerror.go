// Package reconcileerror tells apart the three ways a reconcile step can fail to finish, as
// the best operators do:
//
//   - Stalled: only the user can fix it (bad spec, no compatible node). Reported in a
//     condition; no requeue, since retrying cannot help. A spec change or a watched object
//     changing starts a new pass.
//   - Waiting: something expected is not there yet. Requeue after a delay, not an error.
//   - any other error: transient (registry down, API conflict). Returned to the
//     controller, which retries with exponential backoff.
package reconcileerror

import (
	"errors"
	"fmt"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
)

// Stalled is an error that needs the user to act.
type Stalled struct {
	Reason  string
	Message string
}

func (e *Stalled) Error() string { return fmt.Sprintf("%s: %s", e.Reason, e.Message) }

// NewStalled returns a Stalled error with a condition reason and an actionable message.
func NewStalled(reason, format string, args ...any) *Stalled {
	return &Stalled{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Waiting means the pass cannot go on yet and should be retried after RequeueAfter.
type Waiting struct {
	Reason       string
	Message      string
	RequeueAfter time.Duration
}

func (e *Waiting) Error() string { return fmt.Sprintf("%s: %s", e.Reason, e.Message) }

// NewWaiting returns a Waiting error.
func NewWaiting(after time.Duration, reason, format string, args ...any) *Waiting {
	return &Waiting{Reason: reason, Message: fmt.Sprintf(format, args...), RequeueAfter: after}
}

// IsStalled reports whether err, or an error it wraps, is Stalled.
func IsStalled(err error) bool {
	var s *Stalled
	return errors.As(err, &s)
}

// ReasonOf returns the condition reason and message of a Stalled or Waiting err (or one
// it wraps); ok is false for any other error.
func ReasonOf(err error) (reason, message string, ok bool) {
	var stalled *Stalled
	if errors.As(err, &stalled) {
		return stalled.Reason, stalled.Message, true
	}
	var waiting *Waiting
	if errors.As(err, &waiting) {
		return waiting.Reason, waiting.Message, true
	}
	return "", "", false
}

// ToResult turns the outcome of a pass into what controller-runtime expects: stalled
// passes end quietly (keeping only what res already scheduled, such as a periodic check),
// waiting passes requeue after their delay or earlier if res already asks for that (the
// earliest requeue wins), others return the error.
func ToResult(res ctrl.Result, err error) (ctrl.Result, error) {
	if err == nil {
		return res, nil
	}
	var stalled *Stalled
	if errors.As(err, &stalled) {
		return res, nil
	}
	var waiting *Waiting
	if errors.As(err, &waiting) {
		return ctrl.Result{RequeueAfter: earliest(res.RequeueAfter, waiting.RequeueAfter)}, nil
	}
	return ctrl.Result{}, err
}

// earliest is the sooner of two requeue delays, 0 meaning none.
func earliest(a, b time.Duration) time.Duration {
	if a <= 0 || (b > 0 && b < a) {
		return b
	}
	return a
}
