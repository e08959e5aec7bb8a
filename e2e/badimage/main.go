// Command badimage derives the bad-input images of the real-node e2e
// (e2e/cluster/check-badinput.sh) from a good image, without Docker: it appends one layer
// to it and pushes the result.
//
//	badimage derive --from REF --to REF [--without PATH]... [--without-uid N] [--foreign PATH]... [--note TEXT]
//	badimage predicate --type URI < ATTESTATIONS
//
// derive: --without deletes PATH (an OCI whiteout), --without-uid rewrites /etc/passwd without
// that uid (read from the image, root-owned 0644 as an image has it), --foreign puts at PATH
// an ELF program built for another CPU than this machine's, --note writes /etc/trainenv-badinput
// (so that images differing only in their note have digests of their own). It prints
// REPOSITORY@DIGEST.
//
// predicate: reads `cosign download attestation` output (one DSSE envelope a line) and
// prints the predicate of the in-toto statement of that type, for `cosign attest`.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

var created = time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

// edits is what derive changes in the image.
type edits struct {
	without    []string
	withoutUID int // < 0: passwd unchanged
	foreign    []string
	note       string
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "derive":
		err = derive(os.Args[2:])
	case "predicate":
		fs := flag.NewFlagSet("predicate", flag.ExitOnError)
		typ := fs.String("type", "", "the predicate type (URI), e.g. https://slsa.dev/provenance/v0.2")
		_ = fs.Parse(os.Args[2:])
		err = predicate(os.Stdin, os.Stdout, *typ)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "badimage:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: badimage derive --from REF --to REF [--without PATH]... [--without-uid N] [--foreign PATH]... [--note TEXT]\n       badimage predicate --type URI < ATTESTATIONS")
	os.Exit(2)
}

func derive(args []string) error {
	fs := flag.NewFlagSet("derive", flag.ExitOnError)
	from := fs.String("from", "", "the image to start from")
	to := fs.String("to", "", "where to push the result, REGISTRY/REPO:TAG")
	insecure := fs.Bool("insecure", true, "plain HTTP to the registry (the dev registry has no TLS)")
	var e edits
	fs.Var((*list)(&e.without), "without", "a path to delete (repeat)")
	fs.IntVar(&e.withoutUID, "without-uid", -1, "a uid to remove from /etc/passwd")
	fs.Var((*list)(&e.foreign), "foreign", "a path to replace with a program for another CPU (repeat)")
	fs.StringVar(&e.note, "note", "", "text of /etc/trainenv-badinput")
	_ = fs.Parse(args)
	if *from == "" || *to == "" {
		usage()
	}
	var opts []name.Option
	if *insecure {
		opts = append(opts, name.Insecure)
	}
	src, err := name.ParseReference(*from, opts...)
	if err != nil {
		return err
	}
	dst, err := name.NewTag(*to, opts...)
	if err != nil {
		return err
	}
	base, err := remote.Image(src)
	if err != nil {
		return fmt.Errorf("reading %s: %w", src, err)
	}
	img, err := apply(base, e)
	if err != nil {
		return err
	}
	if err := remote.Write(dst, img); err != nil {
		return fmt.Errorf("push %s: %w", dst, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s@%s\n", dst.Context(), digest)
	return nil
}

// apply appends one layer with the edits to base.
func apply(base v1.Image, e edits) (v1.Image, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	file := func(p string, mode int64, content []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(path.Clean(p), "/"), Mode: mode, Size: int64(len(content)),
			ModTime: created, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(content)
		return err
	}
	for _, p := range e.without {
		dir, base := path.Split(path.Clean(p))
		if err := file(path.Join(dir, ".wh."+base), 0o644, nil); err != nil {
			return nil, err
		}
	}
	if e.withoutUID >= 0 {
		passwd, err := readFile(base, "etc/passwd")
		if err != nil {
			return nil, err
		}
		if err := file("etc/passwd", 0o644, withoutUID(passwd, e.withoutUID)); err != nil {
			return nil, err
		}
	}
	for _, p := range e.foreign {
		if err := file(p, 0o755, foreignELF()); err != nil {
			return nil, err
		}
	}
	if e.note != "" {
		if err := file("etc/trainenv-badinput", 0o644, []byte(e.note+"\n")); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	return mutate.AppendLayers(base, layer)
}

// readFile reads p from the image's layers, the top one first; an OCI whiteout of it ends
// the search.
func readFile(img v1.Image, p string) ([]byte, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	dir, base := path.Split(p)
	for i := len(layers) - 1; i >= 0; i-- {
		content, found, err := fileInLayer(layers[i], p, path.Join(dir, ".wh."+base))
		if err != nil {
			return nil, err
		}
		if found {
			if content == nil {
				break
			}
			return content, nil
		}
	}
	return nil, fmt.Errorf("the image has no /%s", p)
}

// fileInLayer returns p's content (found), nil content and found for its whiteout.
func fileInLayer(l v1.Layer, p, whiteout string) ([]byte, bool, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, false, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		switch strings.TrimPrefix(path.Clean(h.Name), "./") {
		case whiteout:
			return nil, true, nil
		case p:
			if h.Typeflag != tar.TypeReg {
				return nil, false, fmt.Errorf("/%s is not a regular file in a layer", p)
			}
			b, err := io.ReadAll(tr)
			return b, err == nil, err
		}
	}
}

// withoutUID drops the passwd lines of uid.
func withoutUID(passwd []byte, uid int) []byte {
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(passwd))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) == 7 {
			if n, err := strconv.Atoi(f[2]); err == nil && n == uid {
				continue
			}
		}
		out.WriteString(sc.Text() + "\n")
	}
	return out.Bytes()
}

// foreignELF is the header of a program for another CPU than this machine's: all that the
// entrypoint's platform check (and the kernel, refusing to run it) reads.
func foreignELF() []byte {
	machine := elf.EM_AARCH64
	if runtime.GOARCH == "arm64" {
		machine = elf.EM_X86_64
	}
	h := elf.Header64{Type: uint16(elf.ET_EXEC), Machine: uint16(machine), Version: uint32(elf.EV_CURRENT), Ehsize: 64, Phentsize: 56, Shentsize: 64}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	var b bytes.Buffer
	_ = binary.Write(&b, binary.LittleEndian, h) // a fixed-size struct into memory
	return b.Bytes()
}

// predicate prints the predicate of the first attestation of type typ in r.
func predicate(r io.Reader, w io.Writer, typ string) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		var envelope struct {
			Payload string `json:"payload"`
		}
		if err := json.Unmarshal(sc.Bytes(), &envelope); err != nil || envelope.Payload == "" {
			continue
		}
		payload, err := base64.StdEncoding.DecodeString(envelope.Payload)
		if err != nil {
			continue
		}
		var statement struct {
			PredicateType string          `json:"predicateType"`
			Predicate     json.RawMessage `json:"predicate"`
		}
		if err := json.Unmarshal(payload, &statement); err != nil || statement.PredicateType != typ {
			continue
		}
		_, err = w.Write(append(statement.Predicate, '\n'))
		return err
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return fmt.Errorf("no attestation of type %s", typ)
}
