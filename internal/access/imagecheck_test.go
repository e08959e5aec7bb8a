package access

import (
	"slices"
	"testing"
)

func TestImageLacksMessageRoundTrip(t *testing.T) {
	msg := ImageLacksMessage([]ImageLack{LackSSHD, LackUser}, []string{"no sshd: install openssh-server", "no uid 1000"})
	if want := "trainenv: image lacks sshd,user: no sshd: install openssh-server; no uid 1000"; msg != want {
		t.Fatalf("message %q, want %q", msg, want)
	}
	lacks, detail, ok := ParseImageLacks(msg + "\n") // the entrypoint ends it with a newline
	if !ok || !slices.Equal(lacks, []ImageLack{LackSSHD, LackUser}) || detail != "no sshd: install openssh-server; no uid 1000" {
		t.Fatalf("ParseImageLacks = %v, %q, %v", lacks, detail, ok)
	}
}

func TestParseImageLacksRefusesOtherMessages(t *testing.T) {
	for _, msg := range []string{
		"",
		"trainenv: idle for 2h0m0s: no SSH session",
		"trainenv: ssh: sshd rejects its configuration",
		"trainenv: image lacks : nothing named",
		"trainenv: image lacks sshd",                 // no detail
		"trainenv: image lacks sshd,gpu: a new word", // a word this version does not know
		"image lacks sshd: not from the entrypoint",
	} {
		if lacks, _, ok := ParseImageLacks(msg); ok {
			t.Errorf("ParseImageLacks(%q) = %v, want not ok", msg, lacks)
		}
	}
}
