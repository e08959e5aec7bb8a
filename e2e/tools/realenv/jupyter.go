package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// torchCode is what the kernel runs; its output is "VERSION False" on a CPU node.
const torchCode = "import torch; print(torch.__version__, torch.cuda.is_available())"

var torchOutput = regexp.MustCompile(`^\d+\.\d+\S* (True|False)\n$`)

// startConnect runs `kubectl trainenv connect` (any free local ports) with extraEnv and
// waits for the addresses it prints.
func (r *run) startConnect(ctx context.Context, name string, extraEnv []string) (b *background, jupyterURL, sshAddr string, err error) {
	b, err = r.start(name, extraEnv, r.o.kubectl, "trainenv", "connect", r.o.name, "-n", r.o.namespace, "--jupyter-port", "0", "--ssh-port", "0")
	if err != nil {
		return nil, "", "", err
	}
	jupyterLine := regexp.MustCompile(`(?m)^Jupyter: (\S+)$`)
	sshLine := regexp.MustCompile(`(?m)^SSH: +(\S+) `)
	err = poll(ctx, time.Minute, 100*time.Millisecond, "connect printing its addresses", func() (bool, string, error) {
		if b.exited() {
			return false, "", fmt.Errorf("connect exited: %s", b.stderr())
		}
		j, s := jupyterLine.FindStringSubmatch(b.stdout()), sshLine.FindStringSubmatch(b.stdout())
		if j == nil || s == nil {
			return false, b.stdout(), nil
		}
		jupyterURL, sshAddr = j[1], s[1]
		return true, "", nil
	})
	return b, jupyterURL, sshAddr, err
}

// checkJupyter: connect prints the URL with the Secret's token; the API refuses requests
// without it and serves them with it; a kernel runs torch and the output comes back over
// the kernel's websocket.
func (r *run) checkJupyter(ctx context.Context) error {
	b, u, s, err := r.startConnect(ctx, "connect", nil)
	if err != nil {
		return err
	}
	r.connect, r.jupyterURL, r.sshAddr = b, u, s
	e, err := r.environment(ctx)
	if err != nil {
		return err
	}
	if e.Status.Access == nil || e.Status.Access.Jupyter == nil {
		return fmt.Errorf("status.access.jupyter is empty")
	}
	ref := e.Status.Access.Jupyter.TokenSecretRef
	token, err := r.k.run(ctx, "-n", r.o.namespace, "get", "secret", ref.Name, "-o", "go-template={{index .data \""+ref.Key+"\" | base64decode}}")
	if err != nil {
		return err
	}
	r.token = token
	parsed, err := url.Parse(u)
	if err != nil || parsed.Query().Get("token") != token || len(token) < 32 {
		return fmt.Errorf("connect printed %q, want the URL with the token of Secret %s (%d characters)", u, ref.Name, len(token))
	}
	base := jupyterBase(u)

	// The API answers once the tunnel and Jupyter are up: apply → Jupyter answering.
	err = poll(ctx, 2*time.Minute, 200*time.Millisecond, "Jupyter answering /api/status through connect", func() (bool, string, error) {
		code, body, err := httpGet(ctx, base+"api/status", token)
		if err != nil {
			return false, err.Error(), nil
		}
		return code == http.StatusOK, fmt.Sprintf("%d %s", code, body), nil
	})
	if err != nil {
		return err
	}
	r.record("apply→Jupyter answering", time.Since(r.applied))
	for _, t := range []string{"", "wrong-" + token[:8]} {
		code, _, err := httpGet(ctx, base+"api/status", t)
		if err != nil {
			return err
		}
		if code != http.StatusForbidden && code != http.StatusUnauthorized {
			return fmt.Errorf("GET /api/status with token %q answered %d, want 403", t, code)
		}
	}

	start := time.Now()
	k, err := startKernel(ctx, base, token)
	if err != nil {
		return err
	}
	defer k.close(ctx)
	ws, resp, err := websocket.DefaultDialer.DialContext(ctx, wsURL(base, "api/kernels/"+k.id+"/channels", ""), nil)
	if err == nil {
		_ = ws.Close()
	}
	status := 0
	if resp != nil {
		status = resp.StatusCode
		_ = resp.Body.Close()
	}
	if status != http.StatusForbidden {
		return fmt.Errorf("the kernel's websocket without the token was not refused with 403: HTTP %d, %s", status, outcome(err, ""))
	}
	out, err := k.execute(ctx, torchCode, 2*time.Minute)
	if err != nil {
		return err
	}
	if !torchOutput.MatchString(out) || !strings.HasSuffix(out, " False\n") {
		return fmt.Errorf("the kernel printed %q, want the torch version and False (no CUDA on the real node)", out)
	}
	r.record("kernel start+torch import", time.Since(start))
	fmt.Printf("e2e realenv:   %s → %s", torchCode, out)
	return nil
}

// jupyterBase is the URL without the query, ending in a slash.
func jupyterBase(u string) string {
	base, _, _ := strings.Cut(u, "?")
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	return base
}

func wsURL(base, path, token string) string {
	u := "ws" + strings.TrimPrefix(base, "http") + path
	if token != "" {
		u += "?token=" + url.QueryEscape(token)
	}
	return u
}

func httpGet(ctx context.Context, u, token string) (int, string, error) {
	return httpDo(ctx, http.MethodGet, u, token, "")
}

func httpDo(ctx context.Context, method, u, token, body string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "token "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(data), err
}

// kernel is a Jupyter kernel started through the REST API, driven over its websocket.
// A goroutine reads the websocket all the time, as a browser does: gorilla/websocket
// answers the server's pings only while reading, and Jupyter closes a websocket whose pings
// go unanswered.
type kernel struct {
	base, token, id, session string
	ws                       *websocket.Conn
	msgs                     chan message
	readErr                  error // set before msgs is closed
}

func (k *kernel) read() {
	defer close(k.msgs)
	for {
		var m message
		if err := k.ws.ReadJSON(&m); err != nil {
			k.readErr = err
			return
		}
		k.msgs <- m
	}
}

func startKernel(ctx context.Context, base, token string) (*kernel, error) {
	code, body, err := httpDo(ctx, http.MethodPost, base+"api/kernels", token, `{"name": "python3"}`)
	if err != nil {
		return nil, err
	}
	var created struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(body), &created); err != nil || code != http.StatusCreated || created.ID == "" {
		return nil, fmt.Errorf("POST /api/kernels answered %d %s", code, outcome(err, body))
	}
	k := kernel{base: base, token: token, id: created.ID, session: randomID()}
	ws, resp, err := websocket.DefaultDialer.DialContext(ctx, wsURL(base, "api/kernels/"+k.id+"/channels", token)+"&session_id="+k.session, nil)
	if resp != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			err = fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
		}
		k.close(ctx)
		return nil, fmt.Errorf("the kernel's websocket: %w", err)
	}
	k.ws, k.msgs = ws, make(chan message, 256)
	go k.read()
	return &k, nil
}

func (k *kernel) close(ctx context.Context) {
	if k.ws != nil {
		_ = k.ws.Close()
	}
	_, _, _ = httpDo(ctx, http.MethodDelete, k.base+"api/kernels/"+k.id, k.token, "")
}

type message struct {
	Header       map[string]any  `json:"header"`
	ParentHeader map[string]any  `json:"parent_header"`
	Metadata     map[string]any  `json:"metadata"`
	Content      json.RawMessage `json:"content"`
	Channel      string          `json:"channel"`
	Buffers      []any           `json:"buffers"`
}

// execute sends an execute_request (Jupyter messaging protocol 5.3) and collects the
// stream output of the request until its execute_reply and the kernel's idle status.
func (k *kernel) execute(ctx context.Context, code string, timeout time.Duration) (string, error) {
	msgID := randomID()
	content, _ := json.Marshal(map[string]any{"code": code, "silent": false, "store_history": false,
		"user_expressions": map[string]any{}, "allow_stdin": false, "stop_on_error": true})
	req := message{
		Header: map[string]any{"msg_id": msgID, "username": "trainenv-e2e", "session": k.session,
			"msg_type": "execute_request", "version": "5.3", "date": time.Now().UTC().Format(time.RFC3339Nano)},
		ParentHeader: map[string]any{}, Metadata: map[string]any{}, Content: content, Channel: "shell", Buffers: []any{},
	}
	if err := k.ws.WriteJSON(req); err != nil {
		return "", fmt.Errorf("sending execute_request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var out strings.Builder
	replied, idle := false, false
	for !replied || !idle {
		var m message
		select {
		case <-ctx.Done():
			return out.String(), fmt.Errorf("no execute_reply and idle status within %s (output so far %q)", timeout, out.String())
		case msg, ok := <-k.msgs:
			if !ok {
				return out.String(), fmt.Errorf("reading the kernel's messages (output so far %q): %w", out.String(), k.readErr)
			}
			m = msg
		}
		if m.ParentHeader["msg_id"] != msgID {
			continue
		}
		var c struct {
			Name, Text, Status, ExecutionState, Ename, Evalue string
		}
		_ = json.Unmarshal(m.Content, &struct {
			Name           *string `json:"name"`
			Text           *string `json:"text"`
			Status         *string `json:"status"`
			ExecutionState *string `json:"execution_state"`
			Ename          *string `json:"ename"`
			Evalue         *string `json:"evalue"`
		}{&c.Name, &c.Text, &c.Status, &c.ExecutionState, &c.Ename, &c.Evalue})
		switch m.Header["msg_type"] {
		case "stream":
			out.WriteString(c.Text)
		case "error":
			return out.String(), fmt.Errorf("the kernel raised %s: %s", c.Ename, c.Evalue)
		case "execute_reply":
			if c.Status != "ok" {
				return out.String(), fmt.Errorf("execute_reply status %q: %s %s", c.Status, c.Ename, c.Evalue)
			}
			replied = true
		case "status":
			idle = c.ExecutionState == "idle"
		}
	}
	return out.String(), nil
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
