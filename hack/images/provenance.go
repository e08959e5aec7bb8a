package main

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// The provenance is a SLSA v0.2 predicate (https://slsa.dev/provenance/v0.2), attached with
// `cosign attest --type slsaprovenance`: what policy-controller's CUE and Rego policies and
// trainenv's ClusterImagePolicy examples read (predicate.builder.id, materials).

const (
	// sourceURL is trainenv's source repository, the material every image is built from.
	sourceURL = "https://github.com/trainenv/trainenv"
	// DefaultBuilderID names this builder run on a developer's machine or in CI; a release
	// pipeline passes its own with -builder-id.
	DefaultBuilderID = sourceURL + "/hack/images@v1"
	buildType        = sourceURL + "/hack/images/buildtype@v1"
)

type provenance struct {
	Builder    provBuilder    `json:"builder"`
	BuildType  string         `json:"buildType"`
	Invocation provInvocation `json:"invocation"`
	Metadata   provMetadata   `json:"metadata"`
	Materials  []material     `json:"materials"`
}

type provBuilder struct {
	ID string `json:"id"`
}

type provInvocation struct {
	ConfigSource provConfigSource `json:"configSource"`
	Parameters   map[string]any   `json:"parameters,omitempty"`
	Environment  map[string]any   `json:"environment,omitempty"`
}

type provConfigSource struct {
	URI        string            `json:"uri,omitempty"`
	Digest     map[string]string `json:"digest,omitempty"`
	EntryPoint string            `json:"entryPoint,omitempty"`
}

type provMetadata struct {
	BuildStartedOn  string           `json:"buildStartedOn"`
	BuildFinishedOn string           `json:"buildFinishedOn"`
	Completeness    provCompleteness `json:"completeness"`
	Reproducible    bool             `json:"reproducible"`
}

type provCompleteness struct {
	Parameters  bool `json:"parameters"`
	Environment bool `json:"environment"`
	Materials   bool `json:"materials"`
}

type material struct {
	URI    string            `json:"uri"`
	Digest map[string]string `json:"digest,omitempty"`
}

// source is the commit the images are built from.
type source struct {
	Commit string
	Dirty  bool
}

// gitSource reads the checkout's commit; outside a checkout it is empty.
func gitSource(dir string) source {
	out, err := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		return source{}
	}
	st, _ := exec.Command("git", "-C", dir, "status", "--porcelain", "--untracked-files=no").Output()
	return source{Commit: strings.TrimSpace(string(out)), Dirty: len(strings.TrimSpace(string(st))) > 0}
}

// recipeSource is the last commit that changed the checkout's path (dirty when the path has
// changes): the reference image's digest then changes with its recipe, not with every commit.
func recipeSource(dir, path string) source {
	out, err := exec.Command("git", "-C", dir, "log", "-1", "--format=%H", "--", path).Output()
	if err != nil {
		return source{}
	}
	st, _ := exec.Command("git", "-C", dir, "status", "--porcelain", "--", path).Output()
	return source{Commit: strings.TrimSpace(string(out)), Dirty: len(strings.TrimSpace(string(st))) > 0}
}

// buildSource is the commit a Go binary says it was built from, or the checkout's.
func buildSource(info *buildinfo.BuildInfo, fallback source) source {
	if rev := setting(info, "vcs.revision"); rev != "" {
		return source{Commit: rev, Dirty: setting(info, "vcs.modified") == "true"}
	}
	return fallback
}

func (s source) material() []material {
	if s.Commit == "" {
		return nil
	}
	return []material{{URI: "git+" + sourceURL, Digest: map[string]string{"sha1": s.Commit}}}
}

// toolchainMaterial is the Go toolchain a binary was built with (its modules are in the SBOM).
func toolchainMaterial(info *buildinfo.BuildInfo) material {
	return material{URI: "pkg:golang/toolchain@" + info.GoVersion}
}

func newProvenance(b *built, builderID string, src source, started, finished time.Time) provenance {
	p := provenance{
		Builder:   provBuilder{ID: builderID},
		BuildType: buildType,
		Invocation: provInvocation{
			ConfigSource: provConfigSource{URI: "git+" + sourceURL, EntryPoint: "hack/images"},
			Parameters:   b.Parameters,
			Environment:  map[string]any{"GOOS": runtime.GOOS, "GOARCH": runtime.GOARCH, "dirty": src.Dirty},
		},
		Metadata: provMetadata{
			BuildStartedOn: started.UTC().Format(time.RFC3339), BuildFinishedOn: finished.UTC().Format(time.RFC3339),
			Completeness: provCompleteness{Parameters: true},
			Reproducible: true,
		},
	}
	if src.Commit != "" {
		p.Invocation.ConfigSource.Digest = map[string]string{"sha1": src.Commit}
	}
	p.Materials = append(src.material(), dedupe(b.Materials)...)
	return p
}

func dedupe(ms []material) []material {
	seen := map[string]bool{}
	var out []material
	for _, m := range ms {
		if !seen[m.URI] {
			seen[m.URI] = true
			out = append(out, m)
		}
	}
	return out
}

// fileMaterial is a file of the checkout with its sha256.
func fileMaterial(root, rel string) (material, error) {
	f, err := os.Open(filepath.Join(root, rel))
	if err != nil {
		return material{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return material{}, err
	}
	return material{URI: "git+" + sourceURL + "#" + filepath.ToSlash(rel), Digest: map[string]string{"sha256": hex.EncodeToString(h.Sum(nil))}}, nil
}
