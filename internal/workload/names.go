// Package workload renders the Kubernetes objects that run a TrainingEnvironment: a
// StatefulSet of one replica, its headless Service and the workspace claim. Rendering is
// pure (no client), so it is tested by comparing objects and by running the real Pod
// Security admission library over the result.
package workload

import (
	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
)

const (
	// LabelEnvironment carries the TrainingEnvironment's name on every object it owns and
	// on its pod, so that the controller can map pods back and cache only those.
	LabelEnvironment = "trainenv.io/environment"
	// AnnotationSpecHash records the hash of the rendered spec; the controller updates an
	// object only when it changes, so a no-op reconcile writes nothing.
	AnnotationSpecHash = "trainenv.io/spec-hash"

	// ContainerName is the name of the environment's container.
	ContainerName = "main"
	// UserID is the uid and gid the environment runs as (Pod Security "restricted"
	// requires non-root; images built for notebooks conventionally use 1000).
	UserID int64 = 1000

	shmVolume       = "dshm"
	workspaceVolume = "workspace"
)

// StatefulSetName is the name of the environment's StatefulSet (and Service).
func StatefulSetName(te *trainenvv1.TrainingEnvironment) string { return te.Name }

// PodName is the name of the environment's only pod.
func PodName(te *trainenvv1.TrainingEnvironment) string { return te.Name + "-0" }

// WorkspaceClaimName is the name of the workspace PersistentVolumeClaim.
func WorkspaceClaimName(te *trainenvv1.TrainingEnvironment) string { return te.Name + "-workspace" }

// Labels are the labels of every object rendered for te.
func Labels(te *trainenvv1.TrainingEnvironment) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":       "trainenv",
		"app.kubernetes.io/instance":   te.Name,
		"app.kubernetes.io/managed-by": "trainenv",
		LabelEnvironment:               te.Name,
	}
}
