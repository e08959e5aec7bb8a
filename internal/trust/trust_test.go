package trust

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
)

func TestVerdictAllowed(t *testing.T) {
	cases := []struct {
		status metav1.ConditionStatus
		reason string
		want   bool
	}{
		{metav1.ConditionTrue, trainenvv1.ReasonVerified, true},
		{metav1.ConditionTrue, trainenvv1.ReasonVerifiedWithWarnings, true},
		{metav1.ConditionUnknown, trainenvv1.ReasonVerificationNotEnforced, true},
		{metav1.ConditionUnknown, trainenvv1.ReasonUnmatchedAllowed, true},
		{metav1.ConditionUnknown, trainenvv1.ReasonPolicyUnavailable, false},
		{metav1.ConditionUnknown, trainenvv1.ReasonRegistryUnavailable, false},
		{metav1.ConditionUnknown, trainenvv1.ReasonWaitingForImage, false},
		{metav1.ConditionUnknown, "", false},
		{metav1.ConditionFalse, trainenvv1.ReasonNoSignature, false},
		{metav1.ConditionFalse, trainenvv1.ReasonUnmatchedAllowed, false},
		{metav1.ConditionFalse, trainenvv1.ReasonVerificationNotEnforced, false},
		{"", trainenvv1.ReasonVerified, false},
	}
	for _, tc := range cases {
		if got := (Verdict{Status: tc.status, Reason: tc.reason}).Allowed(); got != tc.want {
			t.Errorf("Verdict{%s, %s}.Allowed() = %v; want %v", tc.status, tc.reason, got, tc.want)
		}
	}
	v, err := NotEnforced{}.Verify(context.Background(), Request{})
	if err != nil || !v.Allowed() || v.Status != metav1.ConditionUnknown {
		t.Fatalf("NotEnforced must allow, as Unknown: %+v, %v", v, err)
	}
}
