// Package promcheck checks trainenv's Prometheus alerting rules with Prometheus' own code:
// rulefmt (what `promtool check rules` runs: PromQL expressions, durations, label and
// annotation templates) and the PromQL parser, for both config/prometheus and what the
// Helm chart renders. It is a separate module so that the operator does not depend on
// Prometheus. `make test-tools` runs it.
package promcheck

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

var repo = filepath.Join("..", "..", "..")

type prometheusRule struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec map[string]any `json:"spec"`
}

// checkRules runs rulefmt over a PrometheusRule's spec (its groups are Prometheus rule
// groups) and returns the metric names the expressions read.
func checkRules(t *testing.T, spec map[string]any) []string {
	t.Helper()
	groups, err := yaml.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	rgs, errs := rulefmt.Parse(groups, false, model.UTF8Validation)
	for _, err := range errs {
		t.Errorf("rulefmt: %v", err)
	}
	if rgs == nil {
		return nil
	}
	var metrics []string
	for _, g := range rgs.Groups {
		for _, r := range g.Rules {
			expr, err := parser.ParseExpr(r.Expr)
			if err != nil {
				t.Errorf("%s: %v", r.Alert, err)
				continue
			}
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				if vs, ok := n.(*parser.VectorSelector); ok {
					metrics = append(metrics, vs.Name)
				}
				return nil
			})
		}
	}
	slices.Sort(metrics)
	return slices.Compact(metrics)
}

func configRule(t *testing.T) prometheusRule {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repo, "config", "prometheus", "prometheus_rule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var r prometheusRule
	if err := yaml.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// contractMetrics are the metrics config/prometheus/README.md documents (the manager's
// registry, checked by internal/metrics' tests).
func contractMetrics(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repo, "config", "prometheus", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(trainenv_[a-z_]+)` \\|").FindAllStringSubmatch(string(data), -1) {
		out = append(out, m[1])
	}
	return out
}

// The rules parse and read only documented metrics (dashboard_test.go checks that every
// documented metric is on the dashboard).
func TestConfigRules(t *testing.T) {
	r := configRule(t)
	if r.Kind != "PrometheusRule" {
		t.Fatalf("kind %q", r.Kind)
	}
	metrics := checkRules(t, r.Spec)
	contract := contractMetrics(t)
	if len(metrics) == 0 || len(contract) == 0 {
		t.Fatalf("rules read %v; README documents %v", metrics, contract)
	}
	for _, m := range metrics {
		if !slices.Contains(contract, m) {
			t.Errorf("a rule reads %s, which config/prometheus/README.md does not document", m)
		}
	}
	for _, m := range []string{"trainenv_environments", "trainenv_verifications_total", "trainenv_node_agent_up"} {
		if !slices.Contains(metrics, m) {
			t.Errorf("no rule reads %s: the alerts for stuck environments, failing verifications and absent agents need it", m)
		}
	}
}

// rulefmt rejects broken rules: the check is not a formality.
func TestBrokenRulesRejected(t *testing.T) {
	for _, bad := range []string{
		"groups: [{name: g, rules: [{alert: A, expr: 'sum by (reason) (rate(x[5m]) > 0'}]}]",
		"groups: [{name: g, rules: [{alert: A, expr: 'up == 0', for: soon}]}]",
		"groups: [{name: g, rules: [{alert: A, expr: 'up == 0', annotations: {summary: '{{ $labels.job '}}]}]",
	} {
		if _, errs := rulefmt.Parse([]byte(bad), false, model.UTF8Validation); len(errs) == 0 {
			t.Errorf("rulefmt accepted %s", bad)
		}
	}
}

// The chart's PrometheusRule carries config/'s rules unchanged.
func TestHelmRules(t *testing.T) {
	helm := os.Getenv("HELM")
	if helm == "" {
		t.Fatal("HELM is not set: run make test-tools")
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helm, "template", "trainenv", filepath.Join(repo, "charts", "trainenv"),
		"--kube-version=1.37.2", "--show-only", "templates/metrics.yaml", "--set", "prometheusRule.enabled=true")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm template: %v: %s", err, stderr.String())
	}
	var found bool
	for _, doc := range strings.Split(stdout.String(), "\n---\n") {
		var r prometheusRule
		if err := yaml.Unmarshal([]byte(doc), &r); err != nil {
			t.Fatal(err)
		}
		if r.Kind != "PrometheusRule" {
			continue
		}
		found = true
		checkRules(t, r.Spec)
		if want := configRule(t).Spec; !reflect.DeepEqual(r.Spec, want) {
			t.Error("the chart's rules differ from config/prometheus (run make helm-sync)")
		}
	}
	if !found {
		t.Error("prometheusRule.enabled=true rendered no PrometheusRule")
	}
}

// Without the node agent, the chart leaves out the alert on absent agents (it would fire on
// every GPU node) and keeps the others unchanged.
func TestHelmRulesWithoutNodeAgent(t *testing.T) {
	helm := os.Getenv("HELM")
	if helm == "" {
		t.Fatal("HELM is not set: run make test-tools")
	}
	out, err := exec.Command(helm, "template", "trainenv", filepath.Join(repo, "charts", "trainenv"), "--kube-version=1.37.2",
		"--show-only", "templates/metrics.yaml", "--set", "prometheusRule.enabled=true,nodeAgent.enabled=false").Output()
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	alerts := func(spec map[string]any) []string {
		var names []string
		for _, g := range spec["groups"].([]any) {
			for _, r := range g.(map[string]any)["rules"].([]any) {
				names = append(names, r.(map[string]any)["alert"].(string))
			}
		}
		return names
	}
	for _, doc := range strings.Split(string(out), "\n---\n") {
		var r prometheusRule
		if err := yaml.Unmarshal([]byte(doc), &r); err != nil {
			t.Fatal(err)
		}
		if r.Kind != "PrometheusRule" {
			continue
		}
		checkRules(t, r.Spec)
		want := slices.DeleteFunc(alerts(configRule(t).Spec), func(a string) bool { return a == "TrainenvNodeAgentDown" })
		if got := alerts(r.Spec); !reflect.DeepEqual(got, want) || len(want) == 0 {
			t.Errorf("alerts %v, want %v", got, want)
		}
		return
	}
	t.Error("no PrometheusRule rendered")
}
