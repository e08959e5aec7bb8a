package access_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/trainenv/trainenv/internal/access"
)

func directives(conf string) map[string][]string {
	d := map[string][]string{}
	for _, l := range strings.Split(conf, "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, _ := strings.Cut(l, " ")
		d[k] = append(d[k], v)
	}
	return d
}

func TestSSHDConfigRendersPolicy(t *testing.T) {
	rtm := access.DefaultSSHDRuntime("alice", "/trainenv/run/ssh")
	conf, err := access.SSHDConfig(access.SSHConfig{ClientAliveIntervalSeconds: 30, ClientAliveCountMax: 10, TCPKeepAlive: true}, rtm)
	if err != nil {
		t.Fatal(err)
	}
	d := directives(conf)
	for k, want := range map[string]string{
		"ListenAddress": "127.0.0.1", "Port": "2222", "AllowUsers": "alice", "PermitRootLogin": "no",
		"PasswordAuthentication": "no", "KbdInteractiveAuthentication": "no", "AuthenticationMethods": "publickey",
		"AuthorizedKeysFile": "/trainenv/run/ssh/authorized_keys", "PidFile": "/trainenv/run/ssh/sshd.pid",
		"StrictModes": "yes", "ClientAliveInterval": "30", "ClientAliveCountMax": "10", "TCPKeepAlive": "yes",
		"AllowTcpForwarding": "local", "LogLevel": "VERBOSE", "UsePAM": "no",
	} {
		if got := d[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want exactly %q", k, got, want)
		}
	}
	if got := d["HostKey"]; strings.Join(got, ",") != "/trainenv/run/ssh/ssh_host_ed25519_key,/trainenv/run/ssh/ssh_host_rsa_key" {
		t.Errorf("HostKey = %q, want the ed25519 and RSA copies", got)
	}
	if _, ok := d["SetEnv"]; ok {
		t.Error("SetEnv without an environment")
	}
}

func TestSSHDConfigSetEnv(t *testing.T) {
	rtm := access.DefaultSSHDRuntime("alice", "/r")
	rtm.Env = []string{"PATH=/opt/conda/bin:/usr/bin", "NOTE=a b #c"}
	conf, err := access.SSHDConfig(access.SSHConfig{ClientAliveIntervalSeconds: 30, ClientAliveCountMax: 10}, rtm)
	if err != nil {
		t.Fatal(err)
	}
	if got := directives(conf)["SetEnv"]; len(got) != 1 || got[0] != `"PATH=/opt/conda/bin:/usr/bin" "NOTE=a b #c"` {
		t.Errorf("SetEnv = %q: one line (sshd reads only the first), each pair quoted", got)
	}
	for _, bad := range []string{`X=say "hi"`, `X=a\b`, "X=line\nbreak", "1X=y", "NOEQUALS"} {
		rtm.Env = []string{bad}
		if _, err := access.SSHDConfig(access.SSHConfig{}, rtm); err == nil {
			t.Errorf("SetEnv %q accepted", bad)
		}
	}
}

func TestSSHDConfigRefusesUnsafeInputs(t *testing.T) {
	good := access.DefaultSSHDRuntime("alice", "/r")
	for name, mutate := range map[string]func(*access.SSHDRuntime){
		"root":          func(r *access.SSHDRuntime) { r.User = "root" },
		"no user":       func(r *access.SSHDRuntime) { r.User = "" },
		"no host key":   func(r *access.SSHDRuntime) { r.HostKeys = nil },
		"relative path": func(r *access.SSHDRuntime) { r.AuthorizedKeys = "authorized_keys" },
		"blank in path": func(r *access.SSHDRuntime) { r.PidFile = "/r/a b" },
	} {
		r := good
		r.HostKeys = append([]string(nil), good.HostKeys...)
		mutate(&r)
		if _, err := access.SSHDConfig(access.SSHConfig{}, r); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestJupyterServerConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  access.JupyterConfig
		cull int
	}{
		{"culling off by default", access.JupyterConfig{WebsocketPingIntervalSeconds: 30}, 0},
		{"culling opted in", access.JupyterConfig{WebsocketPingIntervalSeconds: 15, CullIdleKernelsAfterSeconds: 3600}, 3600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := access.JupyterServerConfig(tc.cfg, 0)
			if err != nil {
				t.Fatal(err)
			}
			var c struct {
				ServerApp struct {
					IP                string `json:"ip"`
					Port              int    `json:"port"`
					OpenBrowser       *bool  `json:"open_browser"`
					AllowRoot         *bool  `json:"allow_root"`
					DisableCheckXSRF  *bool  `json:"disable_check_xsrf"`
					AllowRemoteAccess *bool  `json:"allow_remote_access"`
					TerminalsEnabled  *bool  `json:"terminals_enabled"`
					Token             *string
					TornadoSettings   map[string]int `json:"tornado_settings"`
				}
				MappingKernelManager map[string]any
			}
			if err := json.Unmarshal(data, &c); err != nil {
				t.Fatal(err)
			}
			sa := c.ServerApp
			if sa.IP != "127.0.0.1" || sa.Port != access.JupyterPort || sa.OpenBrowser == nil || *sa.OpenBrowser ||
				sa.AllowRoot == nil || *sa.AllowRoot || sa.DisableCheckXSRF == nil || *sa.DisableCheckXSRF ||
				sa.AllowRemoteAccess == nil || *sa.AllowRemoteAccess || sa.TerminalsEnabled == nil || !*sa.TerminalsEnabled {
				t.Errorf("ServerApp = %s", data)
			}
			if strings.Contains(strings.ToLower(string(data)), "token") {
				t.Errorf("the JSON config mentions a token: %s", data)
			}
			ping := int(tc.cfg.WebsocketPingIntervalSeconds)
			if sa.TornadoSettings["ws_ping_interval"] != ping*1000 || sa.TornadoSettings["websocket_ping_interval"] != ping {
				t.Errorf("tornado_settings = %v, want ws_ping_interval %d ms and websocket_ping_interval %d s", sa.TornadoSettings, ping*1000, ping)
			}
			k := c.MappingKernelManager
			if k["cull_idle_timeout"] != float64(tc.cull) || k["cull_busy"] != false || k["cull_connected"] != false {
				t.Errorf("MappingKernelManager = %v, want cull_idle_timeout %d, never busy or connected kernels", k, tc.cull)
			}
		})
	}
}

func TestJupyterTokenConfigReadsTheEnvironment(t *testing.T) {
	py := string(access.JupyterTokenConfig())
	if !strings.Contains(py, `os.environ.get("JUPYTER_TOKEN"`) || !strings.Contains(py, "raise ValueError") {
		t.Errorf("token config does not bind JUPYTER_TOKEN or refuse an empty one:\n%s", py)
	}
}
