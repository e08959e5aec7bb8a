//go:build scalebench

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

type report struct {
	cfg                            config
	cpuModel, loadStart            string
	baseline, warmup, envs, steady *result
	paced                          *result
	restart                        *result
}

type goal struct {
	name, got string
	ok        bool
}

func newReport(cfg config) *report {
	return &report{cfg: cfg, cpuModel: cpuModel(), loadStart: loadAvg()}
}

func cpuModel() string {
	raw, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func loadAvg() string {
	raw, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func ms(d time.Duration) string  { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }
func sec(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
func mib(b int64) string         { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func per(v float64, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", v/float64(n))
}

func (rp *report) print(w io.Writer) {
	c := rp.cfg
	fmt.Fprintf(w, "\n## trainenv scale benchmark\n\n")
	fmt.Fprintf(w, "machine: %d CPUs (%s), load average %s at start, %s at end\n", runtime.NumCPU(), rp.cpuModel, rp.loadStart, loadAvg())
	fmt.Fprintf(w, "run: %d nodes, %d environments in %d namespaces, %d signed images, %.0f creates/s, %d workers, "+
		"manager --max-concurrent-reconciles=%d --sync-period=%s, kube-controller-manager and kube-scheduler client QPS %d\n",
		c.nodes, c.envs, c.namespaces, c.images, c.rate, c.workers, c.concurrency, c.syncPeriod, c.componentQPS)
	if c.memoryLimit > 0 {
		fmt.Fprintf(w, "manager memory limit %s (GOMEMLIMIT %s)\n", mib(c.memoryLimit), mib(c.goMemLimit()))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| phase | objects | converged | create→StatefulSet p50 / p99 | create→pod p50 / p99 | create→final p50 / p99 | API writes / object | manager writes / object | reconciles / object | registry requests | manager CPU | manager RSS (peak; anonymous) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range []*result{rp.baseline, rp.warmup, rp.envs, rp.steady, rp.paced, rp.restart} {
		if r == nil {
			continue
		}
		wl := "-"
		if len(r.toWorkload) > 0 {
			wl = ms(percentile(r.toWorkload, .5)) + " / " + ms(percentile(r.toWorkload, .99))
		}
		pod := "-"
		if len(r.toPod) > 0 {
			pod = sec(percentile(r.toPod, .5)) + " / " + sec(percentile(r.toPod, .99))
		}
		fin := "-"
		if len(r.toFinal) > 0 {
			fin = sec(percentile(r.toFinal, .5)) + " / " + sec(percentile(r.toFinal, .99))
		}
		mw, cpu, rss := fmt.Sprintf("%.0f (%s)", r.mgrWrites, per(r.mgrWrites, r.n)), "-", "-"
		if r.stats.peak > 0 {
			cpu, rss = sec(r.cpu), mib(r.stats.rss)+" ("+mib(r.stats.peak)+"; "+mib(r.stats.anon)+")"
		}
		rec := fmt.Sprintf("%.0f (%s)", r.reconciles, per(r.reconciles, r.n))
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %.0f (%s) | %s | %s | %d | %s | %s |\n", r.name, r.n, sec(r.converge), wl, pod, fin,
			total(r.apiWrites), per(total(r.apiWrites), r.n), mw, rec, r.registry.total, cpu, rss)
	}
	if r := rp.restart; r != nil {
		fmt.Fprintf(w, "\nrestart against %d environments: informers synced %s after the process started, RSS then %s\n", r.n, sec(r.syncTime), mib(r.syncRSS))
	}
	for _, r := range []*result{rp.baseline, rp.envs, rp.steady} {
		if r != nil {
			breakdown(w, "API writes, "+r.name, r.apiWrites, 12)
		}
	}
	for _, r := range []*result{rp.warmup, rp.envs, rp.steady, rp.restart} {
		if r != nil {
			regs := map[string]float64{}
			for k, v := range r.registry.byKind {
				regs[k] = float64(v)
			}
			breakdown(w, "registry requests, "+r.name, regs, 10)
		}
	}
	fmt.Fprintln(w, "\n| goal | measured | |\n|---|---|---|")
	for _, g := range rp.evaluate() {
		mark := "PASS"
		if !g.ok {
			mark = "MISSED"
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", g.name, g.got, mark)
	}
}

func breakdown(w io.Writer, title string, m map[string]float64, top int) {
	if len(m) == 0 {
		return
	}
	var parts []string
	for i, k := range sortedKeys(m) {
		if i == top {
			parts = append(parts, "...")
			break
		}
		parts = append(parts, fmt.Sprintf("%s %.0f", k, m[k]))
	}
	fmt.Fprintf(w, "\n%s: %s\n", title, strings.Join(parts, ", "))
}

// verificationRequests are the registry requests verifications made: each reads the
// signature manifest and blob after one ping; resolutions ping once and HEAD the tag.
func verificationRequests(c registryCounts) int {
	pings := c.byKind["GET ping"]
	return c.byKind["GET signature manifest"] + c.byKind["GET signature blob"] + pings - c.byKind["HEAD manifest by tag"]
}

func (rp *report) evaluate() []goal {
	var gs []goal
	add := func(name, got string, ok bool) { gs = append(gs, goal{name, got, ok}) }
	if e, b := rp.envs, rp.baseline; e != nil && b != nil {
		ratio := e.converge.Seconds() / b.converge.Seconds()
		add("environments converge within 2x the bare pods", fmt.Sprintf("%s vs %s (%.2fx)", sec(e.converge), sec(b.converge), ratio), ratio <= 2)
	}
	if e := rp.envs; e != nil {
		add("environments converge under 90 s", sec(e.converge), e.converge < 90*time.Second)
		p99 := percentile(e.toWorkload, .99)
		add(fmt.Sprintf("p99 create→StatefulSet under 300 ms (warm verification cache), %.0f creates/s", rp.cfg.rate), ms(p99),
			p99 < 300*time.Millisecond && len(e.toWorkload) == e.n)
		add("manager RSS under 300 MiB", mib(e.stats.peak), e.stats.peak < 300<<20)
		add("no verification when the cache is warm", fmt.Sprint(e.registry.verifications), e.registry.verifications == 0)
	}
	if p := rp.paced; p != nil && p.n > 0 {
		p99 := percentile(p.toWorkload, .99)
		add(fmt.Sprintf("p99 create→StatefulSet under 300 ms (warm verification cache), %.0f creates/s", rp.cfg.pacedRate), ms(p99),
			p99 < 300*time.Millisecond && len(p.toWorkload) == p.n)
		add("no verification when the cache is warm (paced)", fmt.Sprint(p.registry.verifications), p.registry.verifications == 0)
	}
	if wu := rp.warmup; wu != nil && wu.n > 0 {
		v := verificationRequests(wu.registry)
		add("verification requests per distinct digest <= 3 (cold)", fmt.Sprintf("%d / %d digests = %s", v, wu.n, per(float64(v), wu.n)), v <= 3*wu.n)
	}
	if s := rp.steady; s != nil {
		add("steady state: manager API writes = 0", fmt.Sprintf("%.0f (over %.0f reconciles)", s.mgrWrites, s.reconciles), s.mgrWrites == 0 && s.reconciles > 0)
		add("steady state: registry requests = 0", fmt.Sprint(s.registry.total), s.registry.total == 0)
	}
	if r := rp.restart; r != nil {
		add(fmt.Sprintf("manager RSS under 300 MiB with %d environments", r.n), mib(r.stats.peak), r.stats.peak < 300<<20)
	}
	return gs
}

// check fails the run when a goal was missed.
func (rp *report) check() error {
	var missed []string
	for _, g := range rp.evaluate() {
		if !g.ok {
			missed = append(missed, g.name+" ("+g.got+")")
		}
	}
	if len(missed) > 0 {
		return errors.New("goals missed: " + strings.Join(missed, "; "))
	}
	return nil
}
