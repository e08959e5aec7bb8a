package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// result is one pushed image.
type result struct {
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	Digest     string `json:"digest"`
	// Ref is repository@digest, what signatures, Helm values and environments name.
	Ref string `json:"ref"`
	// Size is the sum of the compressed layers and the config.
	Size int64 `json:"size"`
}

type pusher struct {
	registry, prefix, tag string
	insecure              bool
}

func (p pusher) push(b *built) (result, error) {
	var opts []name.Option
	if p.insecure {
		opts = append(opts, name.Insecure)
	}
	tag, err := name.NewTag(p.registry+"/"+p.prefix+"/"+b.Name+":"+p.tag, opts...)
	if err != nil {
		return result{}, err
	}
	if err := remote.Write(tag, b.Image, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return result{}, fmt.Errorf("push %s: %w", tag, err)
	}
	d, err := b.Image.Digest()
	if err != nil {
		return result{}, err
	}
	m, err := b.Image.Manifest()
	if err != nil {
		return result{}, err
	}
	size := m.Config.Size
	for _, l := range m.Layers {
		size += l.Size
	}
	repo := tag.Context().Name()
	return result{Repository: repo, Tag: p.tag, Digest: d.String(), Ref: repo + "@" + d.String(), Size: size}, nil
}

// outputs is images.json; images.env says the same for shells and Makefiles.
type outputs struct {
	Registry         string            `json:"registry"`
	SigningPublicKey string            `json:"signingPublicKey,omitempty"`
	BuilderID        string            `json:"builderID"`
	Images           map[string]result `json:"images"`
}

// write merges o into the state directory's images.json (images built by an earlier run for
// the same registry stay: make images and make refimage fill one file), writes images.env,
// and returns images.env's contents.
func (o outputs) write(state string) (string, error) {
	jsonPath := filepath.Join(state, "images.json")
	var prev outputs
	switch b, err := os.ReadFile(jsonPath); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", err
	default:
		if err := json.Unmarshal(b, &prev); err != nil {
			return "", fmt.Errorf("%s: %w", jsonPath, err)
		}
	}
	if prev.Registry == o.Registry {
		for k, v := range prev.Images {
			if _, ok := o.Images[k]; !ok {
				o.Images[k] = v
			}
		}
		if o.SigningPublicKey == "" {
			o.SigningPublicKey = prev.SigningPublicKey
		}
	}
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(jsonPath, append(b, '\n'), 0o644); err != nil {
		return "", err
	}
	env := o.env()
	return env, os.WriteFile(filepath.Join(state, "images.env"), []byte(env), 0o644)
}

func (o outputs) env() string {
	var sb strings.Builder
	sb.WriteString("# Written by hack/images: trainenv's images, pushed and signed.\n")
	for _, n := range knownImages {
		r, ok := o.Images[n]
		if !ok {
			continue
		}
		v := "TRAINENV_" + strings.ToUpper(strings.ReplaceAll(n, "-", "_"))
		fmt.Fprintf(&sb, "%s_IMAGE=%s\n%s_REPOSITORY=%s\n%s_DIGEST=%s\n", v, r.Ref, v, r.Repository, v, r.Digest)
	}
	if o.SigningPublicKey != "" {
		fmt.Fprintf(&sb, "TRAINENV_SIGNING_PUBLIC_KEY=%s\n", o.SigningPublicKey)
	}
	fmt.Fprintf(&sb, "TRAINENV_BUILDER_ID=%s\n", o.BuilderID)
	return sb.String()
}
