package promcheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

// dashboard is the part of a Grafana dashboard these checks read.
type dashboard struct {
	UID    string  `json:"uid"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID      int     `json:"id"`
	Type    string  `json:"type"`
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"` // a collapsed row's panels
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

func (p panel) all() []panel {
	out := []panel{p}
	for _, c := range p.Panels {
		out = append(out, c.all()...)
	}
	return out
}

// grafanaVariables are the built-in variables Grafana replaces before the query reaches
// Prometheus; any other $variable would be a dashboard variable this dashboard lacks.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

// histogramSeries maps a histogram's series (_bucket, _sum, _count) to its metric.
var histogramSeries = regexp.MustCompile(`_(bucket|sum|count)$`)

// checkDashboard parses every panel query with Prometheus' PromQL parser and returns the
// metrics they read, as documented (a histogram's _bucket, _sum and _count as the
// histogram), and what is wrong.
func checkDashboard(data []byte, documented map[string]string) (read, problems []string) {
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, []string{"dashboard.json: " + err.Error()}
	}
	if d.UID == "" {
		problems = append(problems, "the dashboard has no uid: re-imports would duplicate it")
	}
	ids := map[int]bool{}
	for _, top := range d.Panels {
		for _, p := range top.all() {
			if ids[p.ID] {
				problems = append(problems, fmt.Sprintf("panel id %d is used twice", p.ID))
			}
			ids[p.ID] = true
			if p.Type != "row" && len(p.Targets) == 0 {
				problems = append(problems, fmt.Sprintf("panel %q has no query", p.Title))
			}
			for _, target := range p.Targets {
				r, errs := checkQuery(target.Expr, documented)
				read = append(read, r...)
				for _, e := range errs {
					problems = append(problems, fmt.Sprintf("panel %q: %s", p.Title, e))
				}
			}
		}
	}
	slices.Sort(read)
	return slices.Compact(read), problems
}

func checkQuery(query string, documented map[string]string) (read, problems []string) {
	expr := grafanaVariables.Replace(query)
	if strings.Contains(expr, "$") {
		return nil, []string{"unknown variable in " + query}
	}
	parsed, err := parser.ParseExpr(expr)
	if err != nil {
		return nil, []string{err.Error()}
	}
	parser.Inspect(parsed, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		if base := histogramSeries.ReplaceAllString(name, ""); documented[base] == "histogram" {
			name = base
		}
		if _, ok := documented[name]; !ok {
			problems = append(problems, "reads "+vs.Name+", which config/prometheus/README.md does not document")
		}
		read = append(read, name)
		return nil
	})
	return read, problems
}

// contractTypes are the documented metrics with their types.
func contractTypes(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repo, "config", "prometheus", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(trainenv_[a-z_]+)` \\| ([a-z]+) \\|").FindAllStringSubmatch(string(data), -1) {
		out[m[1]] = m[2]
	}
	return out
}

// Every query of the dashboard parses, reads only metrics the manager exports, and every
// metric it exports has a panel.
func TestDashboard(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repo, "config", "prometheus", "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	documented := contractTypes(t)
	read, problems := checkDashboard(data, documented)
	for _, p := range problems {
		t.Error(p)
	}
	if len(documented) < 10 {
		t.Fatalf("README.md documents only %v", documented)
	}
	for m := range documented {
		if !slices.Contains(read, m) {
			t.Errorf("no panel shows %s", m)
		}
	}
}

// The checks find what they look for: a query that does not parse, an undocumented metric,
// a histogram suffix on a counter, a variable Grafana does not define.
func TestDashboardChecksFail(t *testing.T) {
	documented := map[string]string{"trainenv_verifications_total": "counter", "trainenv_verification_duration_seconds": "histogram"}
	for query, says := range map[string]string{
		"sum(rate(trainenv_verifications_total[5m])":                             "unclosed left parenthesis",
		"trainenv_not_a_metric":                                                  "reads trainenv_not_a_metric",
		"trainenv_verifications_total_count":                                     "reads trainenv_verifications_total_count",
		"rate(trainenv_verifications_total[$window])":                            "unknown variable",
		"histogram_quantile(0.9, trainenv_verification_duration_seconds_bucket)": "",
	} {
		d := fmt.Sprintf(`{"uid":"x","panels":[{"id":1,"type":"timeseries","title":"p","targets":[{"expr":%q}]}]}`, query)
		_, problems := checkDashboard([]byte(d), documented)
		switch {
		case says == "" && len(problems) > 0:
			t.Errorf("%s: %v", query, problems)
		case says != "" && (len(problems) != 1 || !strings.Contains(problems[0], says)):
			t.Errorf("%s: want a problem saying %q, got %v", query, says, problems)
		}
	}
}

// The chart ships config/'s dashboard unchanged, as a ConfigMap for Grafana's sidecar.
func TestHelmDashboard(t *testing.T) {
	helm := os.Getenv("HELM")
	if helm == "" {
		t.Fatal("HELM is not set: run make test-tools")
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helm, "template", "trainenv", filepath.Join(repo, "charts", "trainenv"),
		"--kube-version=1.37.2", "--show-only", "templates/metrics.yaml", "--set", "grafanaDashboard.enabled=true")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm template: %v: %s", err, stderr.String())
	}
	want, err := os.ReadFile(filepath.Join(repo, "config", "prometheus", "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(stdout.String(), "\n---\n") {
		var cm struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
			Data map[string]string `json:"data"`
		}
		if err := yaml.Unmarshal([]byte(doc), &cm); err != nil {
			t.Fatal(err)
		}
		if cm.Kind != "ConfigMap" {
			continue
		}
		if cm.Metadata.Labels["grafana_dashboard"] != "1" {
			t.Errorf("the dashboard ConfigMap lacks the grafana_dashboard label: %v", cm.Metadata.Labels)
		}
		if strings.TrimSpace(cm.Data["trainenv.json"]) != strings.TrimSpace(string(want)) {
			t.Error("the chart's dashboard differs from config/prometheus/dashboard.json (run make helm-sync)")
		}
		return
	}
	t.Error("grafanaDashboard.enabled=true rendered no ConfigMap")
}
