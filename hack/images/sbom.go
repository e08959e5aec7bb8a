package main

import (
	"debug/buildinfo"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The SBOM is an SPDX 2.3 JSON document, attached with `cosign attest --type spdxjson`. It
// lists the image, each Go binary with the modules its build info names, and each Debian
// package (from the building machine for trainenv's images, from the root file system's
// dpkg status for the reference image).

type spdxDocument struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	Name             string            `json:"name"`
	SPDXID           string            `json:"SPDXID"`
	VersionInfo      string            `json:"versionInfo,omitempty"`
	Supplier         string            `json:"supplier,omitempty"`
	DownloadLocation string            `json:"downloadLocation"`
	FilesAnalyzed    bool              `json:"filesAnalyzed"`
	Checksums        []spdxChecksum    `json:"checksums,omitempty"`
	LicenseConcluded string            `json:"licenseConcluded"`
	LicenseDeclared  string            `json:"licenseDeclared"`
	CopyrightText    string            `json:"copyrightText"`
	PrimaryPurpose   string            `json:"primaryPackagePurpose,omitempty"`
	Comment          string            `json:"comment,omitempty"`
	ExternalRefs     []spdxExternalRef `json:"externalRefs,omitempty"`
}

type spdxChecksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

type spdxExternalRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

const noAssertion = "NOASSERTION"

// sbom describes b, pushed as repo@digest.
func sbom(b *built, repo, digest string, created time.Time) spdxDocument {
	doc := spdxDocument{
		SPDXVersion: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT",
		Name:              repo + "@" + digest,
		DocumentNamespace: sourceURL + "/spdx/" + url.PathEscape(repo) + "/" + strings.Replace(digest, ":", "-", 1),
		CreationInfo:      spdxCreationInfo{Created: created.UTC().Format(time.RFC3339), Creators: []string{"Tool: trainenv-hack-images"}},
	}
	imageID := "SPDXRef-Image"
	doc.Packages = append(doc.Packages, spdxPackage{
		Name: repo, SPDXID: imageID, VersionInfo: digest, DownloadLocation: noAssertion,
		Checksums:      []spdxChecksum{{Algorithm: "SHA256", Value: strings.TrimPrefix(digest, "sha256:")}},
		PrimaryPurpose: "CONTAINER",
		ExternalRefs: []spdxExternalRef{{Category: "PACKAGE-MANAGER", Type: "purl",
			Locator: "pkg:oci/" + lastElem(repo) + "@" + url.PathEscape(digest) + "?repository_url=" + url.QueryEscape(repo)}},
	})
	doc.Relationships = append(doc.Relationships, spdxRelationship{"SPDXRef-DOCUMENT", "DESCRIBES", imageID})
	seen := map[string]bool{}
	add := func(p spdxPackage, parent, rel string) {
		if !seen[p.SPDXID] {
			seen[p.SPDXID] = true
			doc.Packages = append(doc.Packages, p)
		}
		doc.Relationships = append(doc.Relationships, spdxRelationship{parent, rel, p.SPDXID})
	}
	for _, path := range sortedKeys(b.Go) {
		info := b.Go[path]
		binID := spdxID("File", path)
		add(goPackage(path, binID, info), imageID, "CONTAINS")
		for _, m := range info.Deps {
			if m.Replace != nil {
				m = m.Replace
			}
			add(goModule(m.Path, m.Version, m.Sum), binID, "DEPENDS_ON")
		}
	}
	for _, d := range b.Debs {
		add(debSPDX(d), imageID, "CONTAINS")
	}
	return doc
}

func goPackage(path, id string, info *buildinfo.BuildInfo) spdxPackage {
	p := unasserted(spdxPackage{Name: path, SPDXID: id, VersionInfo: info.Main.Version, PrimaryPurpose: "APPLICATION",
		Comment: fmt.Sprintf("Go binary built with %s from %s", info.GoVersion, info.Path)})
	p.ExternalRefs = []spdxExternalRef{{Category: "PACKAGE-MANAGER", Type: "purl",
		Locator: "pkg:golang/" + info.Main.Path + "@" + url.PathEscape(info.Main.Version)}}
	if rev := setting(info, "vcs.revision"); rev != "" {
		p.DownloadLocation = "git+" + sourceURL + "@" + rev
	}
	return p
}

func goModule(path, version, sum string) spdxPackage {
	p := unasserted(spdxPackage{Name: path, SPDXID: spdxID("Go", path+"@"+version), VersionInfo: version, PrimaryPurpose: "LIBRARY"})
	p.ExternalRefs = []spdxExternalRef{{Category: "PACKAGE-MANAGER", Type: "purl",
		Locator: "pkg:golang/" + path + "@" + url.PathEscape(version)}}
	if sum != "" {
		p.Comment = "go.sum " + sum
	}
	return p
}

func debSPDX(d debPackage) spdxPackage {
	p := unasserted(spdxPackage{Name: d.Name, SPDXID: spdxID("Deb", d.Name+"@"+d.Version), VersionInfo: d.Version,
		Supplier: "Organization: Debian", PrimaryPurpose: "LIBRARY"})
	q := "arch=" + d.Arch
	if d.Source != "" && d.Source != d.Name {
		q += "&upstream=" + url.QueryEscape(d.Source)
	}
	p.ExternalRefs = []spdxExternalRef{{Category: "PACKAGE-MANAGER", Type: "purl",
		Locator: "pkg:deb/debian/" + d.Name + "@" + url.PathEscape(d.Version) + "?" + q}}
	return p
}

func unasserted(p spdxPackage) spdxPackage {
	p.DownloadLocation, p.LicenseConcluded, p.LicenseDeclared, p.CopyrightText = noAssertion, noAssertion, noAssertion, noAssertion
	return p
}

var notIDChar = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

// spdxID makes an SPDX element ID (letters, digits, '.', '-') from a kind and a name.
func spdxID(kind, name string) string {
	return "SPDXRef-" + kind + "-" + strings.Trim(notIDChar.ReplaceAllString(name, "-"), "-")
}

func lastElem(repo string) string { return repo[strings.LastIndex(repo, "/")+1:] }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
