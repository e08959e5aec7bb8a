package main

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
)

// entry is one file, directory or symbolic link of a layer.
type entry struct {
	// Path inside the image, without a leading slash.
	Path string
	Type byte // tar.TypeReg, tar.TypeDir or tar.TypeSymlink
	Mode int64
	UID  int
	GID  int
	// From is the host file a regular file is copied from; Data is used when From is empty.
	From string
	Data []byte
	// Link is a symbolic link's target.
	Link string
}

func dir(p string, mode int64, uid, gid int) entry {
	return entry{Path: p, Type: tar.TypeDir, Mode: mode, UID: uid, GID: gid}
}

func file(p string, mode int64, data string) entry {
	return entry{Path: p, Type: tar.TypeReg, Mode: mode, Data: []byte(data)}
}

func hostFile(p string, mode int64, from string) entry {
	return entry{Path: p, Type: tar.TypeReg, Mode: mode, From: from}
}

func symlink(p, target string) entry {
	return entry{Path: p, Type: tar.TypeSymlink, Mode: 0o777, Link: target}
}

// layer writes entries as a reproducible gzip-compressed tar into dir and returns it as an
// OCI layer: entries sorted by path, parent directories added (root, 0755), every time
// mtime, no user or group names, a gzip header without name or time. The same entries give
// the same digest on any machine with the same Go compress/gzip.
func layer(tmpDir string, mtime time.Time, entries []entry) (v1.Layer, error) {
	f, err := os.CreateTemp(tmpDir, "layer-*.tar.gz")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zw, err := gzip.NewWriterLevel(f, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for _, e := range withParents(entries) {
		if err := writeEntry(tw, mtime, e); err != nil {
			return nil, fmt.Errorf("%s: %w", e.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	// An already compressed file: the digest is the file's sha256, nothing is recompressed.
	return tarball.LayerFromFile(f.Name(), tarball.WithMediaType(types.OCILayer))
}

// withParents sorts entries by path and adds the directories they need that are not
// listed, owned by root with mode 0755.
func withParents(entries []entry) []entry {
	seen := map[string]bool{}
	for _, e := range entries {
		seen[e.Path] = true
	}
	out := slices.Clone(entries)
	for _, e := range entries {
		for d := path.Dir(e.Path); d != "." && d != "/" && !seen[d]; d = path.Dir(d) {
			seen[d] = true
			out = append(out, dir(d, 0o755, 0, 0))
		}
	}
	slices.SortFunc(out, func(a, b entry) int { return strings.Compare(a.Path, b.Path) })
	return out
}

func writeEntry(tw *tar.Writer, mtime time.Time, e entry) error {
	h := &tar.Header{
		Typeflag: e.Type, Name: e.Path, Mode: e.Mode, Uid: e.UID, Gid: e.GID,
		ModTime: mtime, Linkname: e.Link,
	}
	switch e.Type {
	case tar.TypeDir:
		h.Name += "/"
		return tw.WriteHeader(h)
	case tar.TypeSymlink:
		return tw.WriteHeader(h)
	case tar.TypeReg:
	default:
		return fmt.Errorf("unsupported entry type %q", e.Type)
	}
	if e.From == "" {
		h.Size = int64(len(e.Data))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(e.Data)
		return err
	}
	src, err := os.Open(e.From)
	if err != nil {
		return err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return err
	}
	h.Size = st.Size()
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	_, err = io.Copy(tw, src)
	return err
}
