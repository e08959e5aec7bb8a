// Package v1alpha1 contains the trainenv.io/v1alpha1 API: the TrainingEnvironment kind.
// +kubebuilder:object:generate=true
// +groupName=trainenv.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "trainenv.io", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this API with a runtime.Scheme. It is
	// apimachinery's, not controller-runtime's, so that clients of the API need no more
	// than apimachinery.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the kinds of this API to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// addKnownTypes registers the kinds of this API and the meta types of its group version.
func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &TrainingEnvironment{}, &TrainingEnvironmentList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
