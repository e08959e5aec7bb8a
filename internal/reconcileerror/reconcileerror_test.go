package reconcileerror

import (
	"errors"
	"fmt"
	"testing"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
)

func TestToResult(t *testing.T) {
	transient := errors.New("connection refused")
	periodic := ctrl.Result{RequeueAfter: 10 * time.Minute}
	soon := ctrl.Result{RequeueAfter: 5 * time.Second}
	cases := []struct {
		name    string
		res     ctrl.Result // what the steps asked for
		in      error
		want    ctrl.Result
		wantErr error
	}{
		{"success keeps result", periodic, nil, periodic, nil},
		{"stalled ends quietly", ctrl.Result{}, NewStalled("NoGPUNodes", "no node"), ctrl.Result{}, nil},
		{"stalled keeps the result", periodic, NewStalled("NoSignature", "unsigned"), periodic, nil},
		{"wrapped stalled ends quietly", ctrl.Result{}, fmt.Errorf("step: %w", NewStalled("X", "y")), ctrl.Result{}, nil},
		{"waiting requeues", ctrl.Result{}, NewWaiting(5*time.Second, "Waiting", "pod"), ctrl.Result{RequeueAfter: 5 * time.Second}, nil},
		{"waiting sooner than the result wins", periodic, NewWaiting(30*time.Second, "Waiting", "secret"), ctrl.Result{RequeueAfter: 30 * time.Second}, nil},
		{"earlier result wins over waiting", soon, NewWaiting(30*time.Second, "Waiting", "secret"), soon, nil},
		{"wrapped waiting requeues", soon, fmt.Errorf("step: %w", NewWaiting(time.Second, "W", "x")), ctrl.Result{RequeueAfter: time.Second}, nil},
		{"transient is returned", periodic, transient, ctrl.Result{}, transient},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ToResult(tc.res, tc.in)
			if got != tc.want || !errors.Is(err, tc.wantErr) {
				t.Fatalf("ToResult(%v, %v) = %v, %v; want %v, %v", tc.res, tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
	if !IsStalled(fmt.Errorf("x: %w", NewStalled("A", "b"))) || IsStalled(transient) {
		t.Fatal("IsStalled does not tell stalled from transient")
	}
}

func TestReasonOf(t *testing.T) {
	cases := []struct {
		in              error
		reason, message string
		ok              bool
	}{
		{NewStalled("InvalidAuthorizedKeys", "line %d", 3), "InvalidAuthorizedKeys", "line 3", true},
		{fmt.Errorf("step: %w", NewWaiting(time.Second, "AuthorizedKeysNotFound", "create it")), "AuthorizedKeysNotFound", "create it", true},
		{errors.New("conflict"), "", "", false},
		{nil, "", "", false},
	}
	for _, tc := range cases {
		reason, message, ok := ReasonOf(tc.in)
		if reason != tc.reason || message != tc.message || ok != tc.ok {
			t.Errorf("ReasonOf(%v) = %q, %q, %v; want %q, %q, %v", tc.in, reason, message, ok, tc.reason, tc.message, tc.ok)
		}
	}
}
