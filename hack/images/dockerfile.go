package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// parseDockerfileConfig reads the image configuration a Dockerfile's ENV, LABEL, USER,
// WORKDIR, CMD and ENTRYPOINT set, so that the Docker-free build and `docker build` agree.
// It knows the forms images/pytorch/Dockerfile uses: key=value pairs (double quotes allowed)
// and the JSON form of CMD and ENTRYPOINT; anything else is an error, never a silent skip.
func parseDockerfileConfig(path string) (v1.Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return v1.Config{}, err
	}
	cfg := v1.Config{Labels: map[string]string{}}
	for i, ins := range instructions(string(b)) {
		cmd, args, _ := strings.Cut(ins, " ")
		args = strings.TrimSpace(args)
		var err error
		switch strings.ToUpper(cmd) {
		case "ENV":
			var kv [][2]string
			if kv, err = pairs(args); err == nil {
				for _, p := range kv {
					cfg.Env = setEnv(cfg.Env, p[0], p[1])
				}
			}
		case "LABEL":
			var kv [][2]string
			if kv, err = pairs(args); err == nil {
				for _, p := range kv {
					cfg.Labels[p[0]] = p[1]
				}
			}
		case "USER":
			cfg.User = args
		case "WORKDIR":
			cfg.WorkingDir = args
		case "CMD":
			err = json.Unmarshal([]byte(args), &cfg.Cmd)
		case "ENTRYPOINT":
			err = json.Unmarshal([]byte(args), &cfg.Entrypoint)
		case "FROM", "COPY", "RUN", "ARG":
			// The contents: packages.txt and setup.sh, which the builder runs itself.
		default:
			err = fmt.Errorf("the Docker-free builder does not know %s", cmd)
		}
		if err != nil {
			return cfg, fmt.Errorf("%s: instruction %d (%s): %w", path, i+1, cmd, err)
		}
	}
	return cfg, nil
}

// instructions joins continued lines and drops comments and blank lines.
func instructions(s string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(s, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "#") || (t == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(t, "\\") {
			cur.WriteString(strings.TrimSuffix(t, "\\"))
			cur.WriteString(" ")
			continue
		}
		cur.WriteString(t)
		if cur.Len() > 0 {
			out = append(out, strings.TrimSpace(cur.String()))
		}
		cur.Reset()
	}
	return out
}

// pairs splits `k=v k2="v 2"` into key/value pairs.
func pairs(s string) ([][2]string, error) {
	var out [][2]string
	for _, w := range words(s) {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", w)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// words splits on spaces outside double quotes and removes the quotes.
func words(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, started := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && inQuote && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == '"':
			inQuote, started = !inQuote, true
		case (c == ' ' || c == '\t') && !inQuote:
			if started {
				out = append(out, cur.String())
				cur.Reset()
				started = false
			}
		default:
			cur.WriteByte(c)
			started = true
		}
	}
	if started {
		out = append(out, cur.String())
	}
	return out
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if strings.HasPrefix(e, k+"=") {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}
