package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

// browserCell runs in the page Jupyter serves, as the notebook frontend's code would: it
// starts a kernel with fetch (authenticated by the login cookie the token URL set, with
// the _xsrf cookie as X-XSRFToken), opens the kernel's websocket (the cookie again, no
// token), executes the code and returns its stream output.
const browserCell = `(async (code) => {
  const xsrf = decodeURIComponent((document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || "");
  const headers = {"Content-Type": "application/json", "X-XSRFToken": xsrf};
  const r = await fetch("/api/kernels", {method: "POST", headers, body: JSON.stringify({name: "python3"}), credentials: "same-origin"});
  if (r.status !== 201) throw new Error("POST /api/kernels: " + r.status + " " + await r.text());
  const kernel = await r.json();
  const session = crypto.randomUUID(), msgID = crypto.randomUUID();
  const ws = new WebSocket("ws://" + location.host + "/api/kernels/" + kernel.id + "/channels?session_id=" + session);
  try {
    return await new Promise((resolve, reject) => {
      let out = "", replied = false, idle = false;
      ws.onerror = () => reject(new Error("the kernel's websocket failed"));
      ws.onclose = (e) => reject(new Error("the kernel's websocket closed: " + e.code));
      ws.onopen = () => ws.send(JSON.stringify({
        header: {msg_id: msgID, username: "browser", session, msg_type: "execute_request", version: "5.3", date: new Date().toISOString()},
        parent_header: {}, metadata: {}, channel: "shell", buffers: [],
        content: {code, silent: false, store_history: true, user_expressions: {}, allow_stdin: false, stop_on_error: true}}));
      ws.onmessage = (e) => {
        const m = JSON.parse(e.data);
        if (!m.parent_header || m.parent_header.msg_id !== msgID) return;
        const t = m.header.msg_type;
        if (t === "stream") out += m.content.text;
        if (t === "error") reject(new Error(m.content.ename + ": " + m.content.evalue));
        if (t === "execute_reply") replied = true;
        if (t === "status" && m.content.execution_state === "idle") idle = true;
        if (replied && idle) resolve(out);
      };
    });
  } finally {
    ws.onclose = null;
    ws.close();
    await fetch("/api/kernels/" + kernel.id, {method: "DELETE", headers, credentials: "same-origin"});
  }
})`

// checkBrowser opens connect's Jupyter URL in headless chromium. The reference image runs
// jupyter-server alone, without a notebook frontend (no notebook or jupyterlab package):
// its page at / is jupyter-server's landing page ("Jupyter Server"). So the check loads
// that page with the token URL a user clicks, sees the server log the browser in (the
// login cookie), and runs a cell from the page's own JavaScript through the REST API and
// the kernel's websocket, as a notebook frontend does. A screenshot is kept on failure.
func (r *run) checkBrowser(ctx context.Context) (err error) {
	dir, err := os.MkdirTemp(r.work, "chromium-")
	if err != nil {
		return err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(r.o.chromium),
		chromedp.UserDataDir(dir),
		chromedp.NoSandbox, // root in the CI container; the page is our own loopback server
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 800),
	)
	// The browser lives as long as this context: the deadline of the whole check.
	tctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	actx, cancel := chromedp.NewExecAllocator(tctx, opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w%s", err, r.screenshot(bctx))
		}
	}()

	start := time.Now()
	// The first Run starts the browser, with no timeout of its own (see chromedp.Run).
	if err := chromedp.Do(bctx, chromedp.Navigate(r.jupyterURL), chromedp.WaitReady(chromedp.CSS("body"))); err != nil {
		return fmt.Errorf("chromium loading %s: %w", r.jupyterURL, err)
	}
	title, err := chromedp.Run(bctx, chromedp.Title())
	if err != nil {
		return err
	}
	location, err := chromedp.Run(bctx, chromedp.Location())
	if err != nil {
		return err
	}
	text, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		return err
	}
	if title != "Jupyter Server" || !strings.Contains(text, "Jupyter Server") {
		return fmt.Errorf("the page at %s is %q (%q), want jupyter-server's landing page", location, title, firstLine(strings.TrimSpace(text)))
	}
	cctx, cancelCell := context.WithTimeout(bctx, 2*time.Minute)
	defer cancelCell()
	out, err := chromedp.Run(cctx, chromedp.Evaluate[string](browserCell+"("+jsString(torchCode)+")", chromedp.EvalAwaitPromise))
	if err != nil {
		return fmt.Errorf("running a cell from the page: %w", err)
	}
	if !torchOutput.MatchString(out) {
		return fmt.Errorf("the cell run from the page printed %q", out)
	}
	r.record("browser page+cell", time.Since(start))
	fmt.Printf("e2e realenv:   chromium: page %q at %s; a cell run from the page printed %s", title, jupyterBase(location), out)
	return nil
}

// screenshot saves the browser's page to the artifacts and says where.
func (r *run) screenshot(ctx context.Context) string {
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil || len(png) == 0 {
		return fmt.Sprintf(" (no screenshot: %v)", err)
	}
	if err := os.MkdirAll(r.o.artifacts, 0o755); err != nil {
		return fmt.Sprintf(" (no screenshot: %v)", err)
	}
	path := filepath.Join(r.o.artifacts, "browser.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return fmt.Sprintf(" (no screenshot: %v)", err)
	}
	return " (screenshot: " + path + ")"
}

func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`).Replace(s) + "'"
}
