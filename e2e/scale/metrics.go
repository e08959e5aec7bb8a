//go:build scalebench

package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// sample is one Prometheus sample: its labels and value.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

type samples []sample

// parseSamples reads the Prometheus text format, enough of it for counters.
func parseSamples(r io.Reader) (samples, error) {
	var out samples
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		s := sample{labels: map[string]string{}}
		var rest string
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			s.name, rest = line[:i], line[j+1:]
			for _, m := range labelRE.FindAllStringSubmatch(line[i+1:j], -1) {
				s.labels[m[1]] = m[2]
			}
		} else {
			s.name, rest, _ = strings.Cut(line, " ")
		}
		v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		if err != nil {
			continue
		}
		s.value = v
		out = append(out, s)
	}
	return out, sc.Err()
}

var labelRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// sum adds the samples of metric name that keep accepts, grouped by key.
func (ss samples) sum(name string, keep func(map[string]string) bool, key func(map[string]string) string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range ss {
		if s.name == name && keep(s.labels) {
			out[key(s.labels)] += s.value
		}
	}
	return out
}

var writeVerbs = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "DELETE": true, "DELETECOLLECTION": true, "APPLY": true}

// apiWrites are the apiserver's write requests by "verb resource[/subresource]".
func apiWrites(ss samples) map[string]float64 {
	return ss.sum("apiserver_request_total", func(l map[string]string) bool { return writeVerbs[l["verb"]] },
		func(l map[string]string) string {
			r := l["resource"]
			if l["subresource"] != "" {
				r += "/" + l["subresource"]
			}
			return l["verb"] + " " + r
		})
}

// managerWrites are the manager's writes, counted by the API server in the manager's
// own FlowSchema (see countManagerRequests).
func managerWrites(ss samples) float64 {
	return total(ss.sum("apiserver_flowcontrol_dispatched_requests_total",
		func(l map[string]string) bool { return l["flow_schema"] == flowWrites }, func(map[string]string) string { return "" }))
}

func scrapeAPIServer(ctx context.Context, cl *cluster) (samples, error) {
	raw, err := cl.cs.RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	return parseSamples(strings.NewReader(string(raw)))
}

// diff is after - before, for every key of after.
func diff(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

func total(m map[string]float64) float64 {
	var t float64
	for _, v := range m {
		t += v
	}
	return t
}

// sortedKeys returns the keys of m, largest value first.
func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	return keys
}

// registryLog counts the requests in the distribution registry's access log (up.sh sends
// its output to logs/registry.log), from an offset on.
type registryLog struct{ path string }

func newRegistryLog(cfg config) registryLog {
	return registryLog{path: filepath.Join(cfg.stateDir, "logs", "registry.log")}
}

func (r registryLog) offset() int64 {
	st, err := os.Stat(r.path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// registryCounts are access-log requests by kind.
type registryCounts struct {
	total         int
	byKind        map[string]int
	verifications int // distinct signature manifests read: one per verification
}

// configBlobs are the digests of the images' config blobs (any other blob read is a
// signature's).
var configBlobs = map[string]bool{}

var accessRE = regexp.MustCompile(`^\S+ - \S+ \[[^\]]+\] "(\w+) (\S+) HTTP/[0-9.]+" (\d+)`)

func (r registryLog) countSince(from int64) (registryCounts, error) {
	c := registryCounts{byKind: map[string]int{}}
	f, err := os.Open(r.path)
	if err != nil {
		return c, err
	}
	defer f.Close()
	if _, err := f.Seek(from, 0); err != nil {
		return c, err
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := accessRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		c.total++
		kind := requestKind(m[1], m[2])
		c.byKind[kind]++
		if kind == "GET signature manifest" {
			c.verifications++
		}
	}
	return c, sc.Err()
}

func requestKind(method, path string) string {
	switch {
	case path == "/v2/":
		return method + " ping"
	case strings.Contains(path, "/manifests/sha256-") && strings.HasSuffix(path, ".sig"):
		return method + " signature manifest"
	case strings.Contains(path, "/manifests/sha256-") && strings.HasSuffix(path, ".att"):
		return method + " attestation manifest"
	case strings.Contains(path, "/manifests/sha256:"):
		return method + " manifest by digest"
	case strings.Contains(path, "/manifests/"):
		return method + " manifest by tag"
	case strings.Contains(path, "/blobs/") && configBlobs[path[strings.LastIndex(path, "/")+1:]]:
		return method + " config blob"
	case strings.Contains(path, "/blobs/"):
		return method + " signature blob"
	}
	return method + " other"
}
