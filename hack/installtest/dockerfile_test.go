package installtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/trainenv/trainenv/hack/render"
)

// The Dockerfile builds every binary with hack/build.sh, in the stage its linking needs,
// and `make build` (which CI runs) builds the same targets with the same script. No image
// is built here (no container engine): this keeps the two from drifting apart.
func TestDockerfileBuildsWhatMakeBuilds(t *testing.T) {
	root := render.RepoRoot()
	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	dockerfile, script := read("Dockerfile"), read("hack/build.sh")

	// build.sh's targets and whether each is static.
	static := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+([a-z-]+)\)\s+pkg=\S+\s+bin=\S+\s+cgo=([01]) ;;`).FindAllStringSubmatch(script, -1) {
		static[m[1]] = m[2] == "0"
	}
	if len(static) < 5 {
		t.Fatalf("could not read build.sh's targets: %v", static)
	}
	// The Dockerfile's build.sh calls, by stage.
	stage, inDocker := "", map[string]string{}
	for _, line := range strings.Split(dockerfile, "\n") {
		if m := regexp.MustCompile(`^FROM \S+ AS (\S+)`).FindStringSubmatch(line); m != nil {
			stage = m[1]
		}
		for _, m := range regexp.MustCompile(`hack/build\.sh (\S+) /out`).FindAllStringSubmatch(line, -1) {
			inDocker[m[1]] = stage
		}
	}
	for _, want := range []string{"manager", "entrypoint", "preflight", "node-agent"} {
		s, ok := inDocker[want]
		switch {
		case !ok:
			t.Errorf("the Dockerfile does not build %s", want)
		case static[want] && s != "static", !static[want] && s != "cgo":
			t.Errorf("the Dockerfile builds %s in stage %q; static binaries belong in \"static\", cgo ones in \"cgo\"", want, s)
		}
	}
	for _, final := range []string{"manager", "node-agent"} {
		start := strings.Index(dockerfile, "AS "+final+"\n")
		if start < 0 {
			t.Errorf("the Dockerfile has no stage %q", final)
			continue
		}
		block := dockerfile[start:]
		if next := strings.Index(block[1:], "\nFROM "); next >= 0 {
			block = block[:next+1]
		}
		if !strings.Contains(block, "USER 65532:65532") {
			t.Errorf("image %s does not run as non-root", final)
		}
	}

	// make build's targets: all of the Dockerfile's whose command exists in this tree.
	out, err := exec.Command("make", "-C", root, "--no-print-directory", "-n", "build").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n build: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`for t in ([a-z -]+); do hack/build\.sh`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("make build does not run hack/build.sh:\n%s", out)
	}
	made := strings.Fields(m[1])
	for target := range inDocker {
		pkg := "cmd/" + target
		if target == "manager" {
			pkg = "cmd"
		}
		if _, err := os.Stat(filepath.Join(root, pkg)); err == nil && !slices.Contains(made, target) {
			t.Errorf("the Dockerfile builds %s, make build does not", target)
		}
	}
}
