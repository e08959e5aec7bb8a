package access_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trainenv/trainenv/internal/access"
	"github.com/trainenv/trainenv/internal/procnet"
	rt "github.com/trainenv/trainenv/internal/testutil/realtools"
)

// jupyterServer is the real Jupyter server running the generated configuration.
type jupyterServer struct {
	user  rt.User
	port  int
	token string
	base  string
	log   *rt.Buffer
}

// jupyterCommand writes the configuration the way the entrypoint does and prepares the
// server as the non-root user. The environment also points at a config directory of a
// careless image that tries to switch authentication off and listen everywhere.
func jupyterCommand(t *testing.T, cfg access.JupyterConfig, token string) (*jupyterServer, *exec.Cmd) {
	t.Helper()
	rt.Require(t, "jupyter-server")
	s := &jupyterServer{user: rt.NonRoot(t), port: rt.FreePort(t), token: token}
	s.base = "http://127.0.0.1:" + strconv.Itoa(s.port)
	home := rt.SafeDir(t, s.user)
	dir := access.RuntimeJupyterDir(home)
	s.user.Mkdir(t, dir, 0o700)
	conf, err := access.JupyterServerConfig(cfg, s.port)
	if err != nil {
		t.Fatal(err)
	}
	s.user.WriteFile(t, access.JupyterConfigFile(dir), conf, 0o600)
	s.user.WriteFile(t, filepath.Join(dir, access.JupyterConfigBase+".py"), access.JupyterTokenConfig(), 0o600)

	image := filepath.Join(home, "image-config")
	s.user.Mkdir(t, image, 0o755)
	bad := []byte(`{"ServerApp": {"ip": "0.0.0.0", "token": "", "password": "", "disable_check_xsrf": true, "allow_remote_access": true}}`)
	for _, name := range []string{"jupyter_config.json", "jupyter_server_config.json"} {
		s.user.WriteFile(t, filepath.Join(image, name), bad, 0o644)
	}
	cmd := s.user.Command("jupyter-server", "--config="+access.JupyterConfigFile(dir))
	cmd.Env = append([]string{
		"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + home, "JUPYTER_CONFIG_PATH=" + image,
		access.JupyterTokenEnv + "=" + token,
	}, access.JupyterEnv(dir)...)
	cmd.Dir = home
	return s, cmd
}

func startJupyter(t *testing.T, cfg access.JupyterConfig) *jupyterServer {
	t.Helper()
	token, err := access.GenerateToken()
	if err != nil {
		t.Fatal(err)
	}
	s, cmd := jupyterCommand(t, cfg, token)
	s.log = rt.Start(t, cmd, s.port)
	return s
}

// do requests path with the given headers (no redirects followed).
func (s *jupyterServer) do(t *testing.T, method, path string, header http.Header, jar http.CookieJar) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if h := header.Get("Host"); h != "" {
		req.Host = h
	}
	client := &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 == 3 {
		return resp.StatusCode, resp.Header.Get("Location")
	}
	return resp.StatusCode, string(body)
}

func (s *jupyterServer) auth() http.Header {
	return http.Header{"Authorization": {"token " + s.token}}
}

func TestJupyterRealAuthentication(t *testing.T) {
	s := startJupyter(t, access.JupyterConfig{WebsocketPingIntervalSeconds: 30})

	if code, _ := s.do(t, "GET", "/api/status", nil, nil); code != http.StatusForbidden {
		t.Errorf("/api/status without a token: %d, want 403", code)
	}
	if code, loc := s.do(t, "GET", "/files/notes.txt", nil, nil); code != http.StatusFound || !strings.Contains(loc, "/login") {
		t.Errorf("/files/notes.txt without a token: %d to %q, want 302 to the login page", code, loc)
	}
	if code, _ := s.do(t, "GET", "/api/status", http.Header{"Authorization": {"token wrong-" + s.token}}, nil); code != http.StatusForbidden {
		t.Errorf("/api/status with a wrong token: %d, want 403", code)
	}
	code, body := s.do(t, "GET", "/api/status", s.auth(), nil)
	var status struct{ Started string }
	if code != http.StatusOK || json.Unmarshal([]byte(body), &status) != nil || status.Started == "" {
		t.Fatalf("/api/status with the token: %d %s, want 200 and the server's status", code, body)
	}
	// allow_remote_access false: a page reached under another host name (DNS rebinding)
	// is refused even with the token.
	rebinding := s.auth()
	rebinding.Set("Host", "attacker.example:"+strconv.Itoa(s.port))
	if code, _ := s.do(t, "GET", "/api/status", rebinding, nil); code != http.StatusForbidden {
		t.Errorf("request for Host attacker.example: %d, want 403", code)
	}
}

// A browser session (login cookie, no token) cannot POST without the XSRF token.
func TestJupyterRealXSRF(t *testing.T) {
	s := startJupyter(t, access.JupyterConfig{WebsocketPingIntervalSeconds: 30})
	jar, _ := cookiejar.New(nil)
	if code, _ := s.do(t, "GET", "/api/status?token="+s.token, nil, jar); code != http.StatusOK {
		t.Fatalf("login with ?token=: %d", code)
	}
	if code, _ := s.do(t, "GET", "/api/terminals", nil, jar); code != http.StatusOK {
		t.Fatalf("GET with the login cookie: %d, want 200 (the cookie logs in)", code)
	}
	code, body := s.do(t, "POST", "/api/terminals", nil, jar)
	if code != http.StatusForbidden || !strings.Contains(body, "_xsrf") {
		t.Errorf("POST with the login cookie and no XSRF token: %d %s, want 403 about _xsrf", code, body)
	}
}

func TestJupyterRealListensOnLoopbackOnly(t *testing.T) {
	s := startJupyter(t, access.JupyterConfig{WebsocketPingIntervalSeconds: 30})
	socks, err := procnet.TCP("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var listening []netip.AddrPort
	for _, so := range socks {
		if so.State == procnet.Listen && int(so.Local.Port()) == s.port {
			listening = append(listening, so.Local)
		}
	}
	if want := netip.MustParseAddrPort("127.0.0.1:" + strconv.Itoa(s.port)); len(listening) != 1 || listening[0] != want {
		t.Fatalf("Jupyter listens on %v, want only %v", listening, want)
	}
}

// The ping interval reaches the server's websockets: with 1 s, a terminal's websocket
// gets pings within seconds (jupyter_server's default is 30 s).
func TestJupyterRealWebsocketPings(t *testing.T) {
	s := startJupyter(t, access.JupyterConfig{WebsocketPingIntervalSeconds: 1})
	code, body := s.do(t, "POST", "/api/terminals", s.auth(), nil)
	var term struct{ Name string }
	if code != http.StatusOK || json.Unmarshal([]byte(body), &term) != nil || term.Name == "" {
		t.Fatalf("new terminal: %d %s", code, body)
	}
	pings, err := rt.CountPings(fmt.Sprintf("127.0.0.1:%d", s.port), "/terminals/websocket/"+term.Name, s.auth(), time.Now().Add(6*time.Second))
	if err != nil || pings < 2 {
		t.Fatalf("%d pings in 6 s (err %v), want at least 2 with a 1 s interval", pings, err)
	}
}

// The server itself refuses to start without a token or as root, whatever starts it.
func TestJupyterRealRefusesToStartUnsafely(t *testing.T) {
	t.Run("empty token", func(t *testing.T) {
		_, cmd := jupyterCommand(t, access.JupyterConfig{WebsocketPingIntervalSeconds: 30}, "")
		out, code := rt.Run(cmd)
		if code == 0 || !strings.Contains(out, access.JupyterTokenEnv+" is empty") {
			t.Fatalf("jupyter-server with an empty token: exit %d:\n%s", code, out)
		}
	})
	t.Run("root", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("only a test running as root can try to start the server as root")
		}
		_, cmd := jupyterCommand(t, access.JupyterConfig{WebsocketPingIntervalSeconds: 30}, "some-token")
		cmd.SysProcAttr = nil // stay root
		out, code := rt.Run(cmd)
		if code == 0 || !strings.Contains(out, "Running as root is not recommended") {
			t.Fatalf("jupyter-server as root: exit %d:\n%s", code, out)
		}
	})
}
