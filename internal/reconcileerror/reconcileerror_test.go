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
	cases := []struct {
		name    string
		in      error
		want    ctrl.Result
		wantErr error
	}{
		{"success keeps result", nil, ctrl.Result{RequeueAfter: time.Minute}, nil},
		{"stalled ends quietly", NewStalled("NoGPUNodes", "no node"), ctrl.Result{}, nil},
		{"wrapped stalled ends quietly", fmt.Errorf("step: %w", NewStalled("X", "y")), ctrl.Result{}, nil},
		{"waiting requeues", NewWaiting(5*time.Second, "Waiting", "pod"), ctrl.Result{RequeueAfter: 5 * time.Second}, nil},
		{"transient is returned", transient, ctrl.Result{}, transient},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := ctrl.Result{}
			if tc.in == nil {
				in = tc.want
			}
			got, err := ToResult(in, tc.in)
			if got != tc.want || !errors.Is(err, tc.wantErr) {
				t.Fatalf("ToResult(%v) = %v, %v; want %v, %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
	if !IsStalled(fmt.Errorf("x: %w", NewStalled("A", "b"))) || IsStalled(transient) {
		t.Fatal("IsStalled does not tell stalled from transient")
	}
}
