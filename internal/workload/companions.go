package workload

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
)

// WorkspaceClaim renders the workspace PersistentVolumeClaim, or nil without a workspace.
// It is created by the controller rather than through volumeClaimTemplates, whose size a
// StatefulSet never changes after creation.
func WorkspaceClaim(te *trainenvv1.TrainingEnvironment) *corev1.PersistentVolumeClaim {
	ws := te.Spec.Workspace
	if ws == nil {
		return nil
	}
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: WorkspaceClaimName(te), Namespace: te.Namespace, Labels: Labels(te)},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ws.StorageClassName,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: ws.Size}},
		},
	}
}

// KeepWorkspace reports whether the workspace outlives the TrainingEnvironment (the claim
// then carries no owner reference, so the garbage collector leaves it alone).
func KeepWorkspace(te *trainenvv1.TrainingEnvironment) bool {
	ws := te.Spec.Workspace
	return ws != nil && (ws.KeepOnDelete == nil || *ws.KeepOnDelete)
}
