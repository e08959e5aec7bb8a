package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// bundleDir is the repository's bundle/, made by `make bundle`.
var bundleDir = filepath.Join("..", "..", "..", "bundle")

// knownWarnings are warnings the validators give for this bundle that are wrong for it,
// each with the reason; any other warning fails.
var knownWarnings = map[*regexp.Regexp]string{
	// The deprecated-API check flags every RBAC rule on events.k8s.io "events": RBAC names no
	// version, and it assumes v1beta1 (removed in 1.25). The manager uses events.k8s.io/v1.
	regexp.MustCompile(`removed in v1\.25\..*Migrate the API\(s\) for events: \(\[("[^"]*" ?)+\]\)$`): "events.k8s.io/v1, not v1beta1",
}

func TestBundleIsValid(t *testing.T) {
	errs, warnings, err := Check(bundleDir, "1.37")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		t.Errorf("error: %s", e)
	}
warnings:
	for _, w := range warnings {
		for re, why := range knownWarnings {
			if re.MatchString(w) {
				t.Logf("known warning (%s): %s", why, w)
				continue warnings
			}
		}
		t.Errorf("warning: %s", w)
	}
}

// The validators catch a broken CSV: the check is not a formality.
func TestBrokenBundleIsRejected(t *testing.T) {
	for name, breakIt := range map[string]func(string) string{
		"alm-examples not JSON": func(csv string) string {
			return strings.Replace(csv, "alm-examples: |-\n      [", "alm-examples: |-\n      [[", 1)
		},
		"owned CRD version not in the bundle": func(csv string) string {
			return strings.Replace(csv, "\n      version: v1alpha1\n", "\n      version: v9\n", 1)
		},
		"bad minKubeVersion": func(csv string) string {
			return regexp.MustCompile(`minKubeVersion: .*`).ReplaceAllString(csv, "minKubeVersion: one-thirty")
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.CopyFS(dir, os.DirFS(bundleDir)); err != nil {
				t.Fatal(err)
			}
			csvPath := filepath.Join(dir, "manifests", "trainenv.clusterserviceversion.yaml")
			data, err := os.ReadFile(csvPath)
			if err != nil {
				t.Fatal(err)
			}
			broken := breakIt(string(data))
			if broken == string(data) {
				t.Fatal("the breaking edit did not apply: update the test")
			}
			if err := os.WriteFile(csvPath, []byte(broken), 0o644); err != nil {
				t.Fatal(err)
			}
			errs, _, err := Check(dir, "1.37")
			if err == nil && len(errs) == 0 {
				t.Error("the validators accepted the broken bundle")
			}
			t.Logf("rejected: %v %v", err, errs)
		})
	}
}

// bundle.Dockerfile's labels are the bundle's metadata annotations (as operator-sdk makes them).
func TestDockerfileLabelsMatchAnnotations(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(bundleDir, "metadata", "annotations.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := yaml.Unmarshal(data, &meta); err != nil {
		t.Fatal(err)
	}
	df, err := os.ReadFile(filepath.Join(bundleDir, "..", "bundle.Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^LABEL (\S+)=(\S+)$`).FindAllStringSubmatch(string(df), -1) {
		labels[m[1]] = m[2]
	}
	if len(labels) == 0 || len(labels) != len(meta.Annotations) {
		t.Errorf("bundle.Dockerfile has %d labels, annotations.yaml %d", len(labels), len(meta.Annotations))
	}
	for k, v := range meta.Annotations {
		if labels[k] != v {
			t.Errorf("label %s = %q in bundle.Dockerfile, %q in annotations.yaml", k, labels[k], v)
		}
	}
	for _, dir := range []string{"manifests", "metadata", "tests/scorecard"} {
		if !slices.ContainsFunc(strings.Split(string(df), "\n"), func(l string) bool {
			return strings.HasPrefix(l, "COPY bundle/"+dir+" ")
		}) {
			t.Errorf("bundle.Dockerfile does not copy bundle/%s", dir)
		}
	}
}
