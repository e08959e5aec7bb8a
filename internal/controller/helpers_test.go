package controller_test

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
)

type v1Image = v1.Image

func reconcileRequest(te *trainenvv1.TrainingEnvironment) ctrl.Request {
	return ctrl.Request{NamespacedName: client.ObjectKeyFromObject(te)}
}

func clientKey(name string) client.ObjectKey { return client.ObjectKey{Name: name} }
