package docscheck

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// permission is one API permission: a verb on a resource (with its subresource, "pods/log").
type permission struct{ group, resource, verb string }

// kubectlNeeds is what each kubectl command the data scientist's guide tells people to run
// asks of the API server (kubectl 1.2x/1.3x: apply reads, then creates or patches; describe
// lists the object's events; logs and exec read the pod first).
var kubectlNeeds = map[string][]permission{
	"apply":             {{"trainenv.io", "trainingenvironments", "get"}, {"trainenv.io", "trainingenvironments", "create"}, {"trainenv.io", "trainingenvironments", "patch"}},
	"get trainenv":      {{"trainenv.io", "trainingenvironments", "get"}, {"trainenv.io", "trainingenvironments", "list"}, {"trainenv.io", "trainingenvironments", "watch"}},
	"describe trainenv": {{"trainenv.io", "trainingenvironments", "get"}, {"", "events", "list"}},
	"describe":          {{"trainenv.io", "trainingenvironments", "get"}, {"", "events", "list"}},
	"patch trainenv":    {{"trainenv.io", "trainingenvironments", "patch"}},
	"delete trainenv":   {{"trainenv.io", "trainingenvironments", "delete"}},
	"create secret":     {{"", "secrets", "create"}},
	"logs":              {{"", "pods", "get"}, {"", "pods/log", "get"}},
	"exec":              {{"", "pods", "get"}, {"", "pods/exec", "create"}},
	"delete pvc":        {{"", "persistentvolumeclaims", "delete"}},
	"delete pod":        {{"", "pods", "delete"}},
	"wait":              {{"trainenv.io", "trainingenvironments", "get"}, {"trainenv.io", "trainingenvironments", "list"}, {"trainenv.io", "trainingenvironments", "watch"}},
}

// Commands named in the guide that ask nothing of the API server.
var kubectlLocal = []string{"plugin", "command", "trainenv --help"}

var kubectlCommand = regexp.MustCompile(`kubectl ((?:trainenv )?[a-z-]+)(?: ([a-z-]+))?`)

// guideNeeds lists the permissions the data scientist's guide needs, by command.
func guideNeeds(t *testing.T) map[string][]permission {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "docs", "data-scientist.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]permission{}
	for _, m := range kubectlCommand.FindAllStringSubmatch(string(data), -1) {
		cmd, arg := m[1], m[2]
		switch {
		case strings.HasPrefix(cmd, "trainenv "):
			continue // the plugin's own calls are read from its source
		case slices.Contains(kubectlLocal, cmd) || slices.Contains(kubectlLocal, cmd+" "+arg):
			continue
		}
		key := cmd + " " + arg
		need, ok := kubectlNeeds[key]
		if !ok {
			key = cmd
			need, ok = kubectlNeeds[key]
		}
		if !ok {
			t.Errorf("docs/data-scientist.md tells people to run `kubectl %s %s`: add what it needs to kubectlNeeds", cmd, arg)
			continue
		}
		out["kubectl "+key] = need
	}
	return out
}

// The plugin's API calls, read from its source: typed clients (CoreV1().Pods(ns).Get), the
// dynamic client on TrainingEnvironments and subresource requests (port-forward).
var (
	typedCall   = regexp.MustCompile(`CoreV1\(\)\.(\w+)\([^)]*\)\.(Get|List|Watch|Create|Update|Patch|Delete)\(`)
	dynamicCall = regexp.MustCompile(`Resource\(environments\)\.Namespace\([^)]*\)\.(Get|List|Watch|Create|Update|Patch|Delete)\(`)
	subresource = regexp.MustCompile(`Resource\("(\w+)"\)\.Namespace\([^)]*\)\.Name\([^)]*\)\.SubResource\("(\w+)"\)`)
)

func pluginNeeds(t *testing.T) map[string][]permission {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "internal", "plugin", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]permission{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src := string(data)
		where := "plugin " + filepath.Base(f)
		for _, m := range typedCall.FindAllStringSubmatch(src, -1) {
			out[where] = append(out[where], permission{"", strings.ToLower(m[1]), strings.ToLower(m[2])})
		}
		for _, m := range dynamicCall.FindAllStringSubmatch(src, -1) {
			out[where] = append(out[where], permission{"trainenv.io", "trainingenvironments", strings.ToLower(m[1])})
		}
		for _, m := range subresource.FindAllStringSubmatch(src, -1) {
			// Port-forward and exec streams are opened with POST (SPDY) or GET (WebSocket).
			for _, verb := range []string{"create", "get"} {
				out[where] = append(out[where], permission{"", m[1] + "/" + m[2], verb})
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no API call found in internal/plugin: the patterns are out of date")
	}
	return out
}

// dataScientistRole is the Role the platform admin guide gives data scientists, read from
// its yaml block.
func dataScientistRole(t *testing.T) rbacv1.Role {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "docs", "platform-admin.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(data), -1) {
		if !strings.Contains(block[1], "name: trainenv-data-scientist") {
			continue
		}
		var role rbacv1.Role
		if err := yaml.UnmarshalStrict([]byte(block[1]), &role); err != nil {
			t.Fatalf("the data scientist Role in docs/platform-admin.md: %v", err)
		}
		return role
	}
	t.Fatal("docs/platform-admin.md has no yaml block with the Role trainenv-data-scientist")
	return rbacv1.Role{}
}

func grants(role rbacv1.Role, p permission) bool {
	for _, r := range role.Rules {
		if slices.Contains(r.APIGroups, p.group) && slices.Contains(r.Resources, p.resource) &&
			(slices.Contains(r.Verbs, p.verb) || slices.Contains(r.Verbs, "*")) && len(r.ResourceNames) == 0 {
			return true
		}
	}
	return false
}

// TestDataScientistRoleGrantsWhatTheGuideRuns: the Role in the platform admin guide grants
// every API call that the commands in the data scientist's guide make, and every call the
// kubectl plugin's source makes, so that nobody following the guide meets "forbidden".
func TestDataScientistRoleGrantsWhatTheGuideRuns(t *testing.T) {
	role := dataScientistRole(t)
	for _, needs := range []map[string][]permission{guideNeeds(t), pluginNeeds(t)} {
		for what, perms := range needs {
			for _, p := range perms {
				if !grants(role, p) {
					t.Errorf("%s needs %s on %s (group %q), which the Role trainenv-data-scientist in docs/platform-admin.md does not grant",
						what, p.verb, p.resource, p.group)
				}
			}
		}
	}
}
