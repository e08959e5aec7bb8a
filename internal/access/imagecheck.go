package access

import (
	"slices"
	"strings"
)

// The entrypoint checks at start that the image has what the environment's spec turns on
// (sshd, a user for the pod's uid, a Jupyter server, programs built for the node's CPU) and,
// when something is missing, exits with a termination message in this format:
//
//	trainenv: image lacks sshd,user: SSH is enabled but the image has no sshd (…); the image has no user with uid 1000 (…)
//
// The words between ImageLacksPrefix and the first ": " name what is missing (ImageLack
// values, in the order the entrypoint checks them); the rest says it for people. The
// operator reads the words to pick the condition reason, and quotes the rest.
const ImageLacksPrefix = "trainenv: image lacks "

// ImageLack is one thing an image lacks, as a stable word of the termination message.
type ImageLack string

const (
	// LackPlatform: the image's programs are built for another CPU architecture than the
	// node's (checked on the programs trainenv runs: sshd, the Jupyter server's interpreter).
	LackPlatform ImageLack = "platform"
	// LackSSHD: SSH is enabled and the image has no sshd.
	LackSSHD ImageLack = "sshd"
	// LackUser: SSH is enabled and /etc/passwd has no user with the pod's uid and cannot
	// be extended.
	LackUser ImageLack = "user"
	// LackJupyter: Jupyter is enabled and no Jupyter server is on the image's PATH.
	LackJupyter ImageLack = "jupyter"
)

// ImageLacksMessage is the termination message for what an image lacks, with a detail for
// each (same order).
func ImageLacksMessage(lacks []ImageLack, details []string) string {
	words := make([]string, len(lacks))
	for i, l := range lacks {
		words[i] = string(l)
	}
	return ImageLacksPrefix + strings.Join(words, ",") + ": " + strings.Join(details, "; ")
}

// ParseImageLacks reads a termination message written by ImageLacksMessage: what the image
// lacks and the detail for people. ok is false for any other message, and for a list that
// holds a word this version does not know (the detail is then quoted as a crash's message).
func ParseImageLacks(message string) (lacks []ImageLack, detail string, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(message), ImageLacksPrefix)
	if !found {
		return nil, "", false
	}
	list, detail, found := strings.Cut(rest, ": ")
	if !found || list == "" {
		return nil, "", false
	}
	known := []ImageLack{LackPlatform, LackSSHD, LackUser, LackJupyter}
	for _, w := range strings.Split(list, ",") {
		if !slices.Contains(known, ImageLack(w)) {
			return nil, "", false
		}
		lacks = append(lacks, ImageLack(w))
	}
	return lacks, detail, true
}
