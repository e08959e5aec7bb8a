// Package render builds the install manifests the way users get them: kustomize (the
// krusty library that `kubectl kustomize` embeds) over config/, and helm template over
// charts/trainenv. The bundle generator and the packaging tests share it, so that what is
// tested is what is shipped.
package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// RepoRoot is the repository root, found from this file's location.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Kustomize renders the kustomization in dir as `kubectl kustomize dir` does.
func Kustomize(dir string) ([]*unstructured.Unstructured, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", dir, err)
	}
	data, err := m.AsYaml()
	if err != nil {
		return nil, err
	}
	return Decode(data)
}

// KustomizeWithImages renders config/<overlay> from a copy of config/ in which the
// kustomization of config/<dir> has its images field replaced, as
// `cd config/<dir> && kustomize edit set image ...` would; the checked-in tree is not touched.
func KustomizeWithImages(overlay, dir string, images []types.Image) ([]*unstructured.Unstructured, error) {
	tmp, err := os.MkdirTemp("", "trainenv-config-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := os.CopyFS(filepath.Join(tmp, "config"), os.DirFS(filepath.Join(RepoRoot(), "config"))); err != nil {
		return nil, err
	}
	kfile := filepath.Join(tmp, "config", dir, "kustomization.yaml")
	data, err := os.ReadFile(kfile)
	if err != nil {
		return nil, err
	}
	var k types.Kustomization
	if err := yaml.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("%s: %w", kfile, err)
	}
	k.Images = images
	if data, err = yaml.Marshal(&k); err != nil {
		return nil, err
	}
	if err := os.WriteFile(kfile, data, 0o644); err != nil {
		return nil, err
	}
	return Kustomize(filepath.Join(tmp, "config", overlay))
}

// Decode reads a multi-document YAML or JSON stream; empty documents are skipped. Whole
// numbers decode as int64, as client-go decodes them.
func Decode(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			return objs, nil
		} else if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		if err := utiljson.Unmarshal(raw, &u.Object); err != nil {
			return nil, err
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

// DecodeFile is Decode of a file.
func DecodeFile(path string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	objs, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return objs, nil
}

// Find returns the first object of the kind and name, or nil.
func Find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}
