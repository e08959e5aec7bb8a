package access

import (
	"encoding/json"
	"path/filepath"
)

// The Jupyter server's configuration is two files with one base name, both loaded by
// `--config=<dir>/jupyter_server_config.json` (traitlets loads NAME.py and NAME.json).
// With --config, jupyter_server loads no jupyter_server_config.* of the image or the
// user, so an image cannot switch authentication off; extensions are still enabled from
// their own jupyter_server_config.d entries.
const JupyterConfigBase = "jupyter_server_config"

// RuntimeJupyterDir is where the entrypoint writes the Jupyter server's files.
func RuntimeJupyterDir(runtimeDir string) string { return filepath.Join(runtimeDir, "jupyter") }

// JupyterServerConfig renders the JSON configuration. It holds no secret: the token is
// bound by JupyterTokenConfig from the environment.
//
// Keys accepted by jupyter_server 1.x (Debian 12 ships 1.23) and 2.x alike; those a
// version does not know it logs and ignores (allow_unauthenticated_access is 2.x's).
func JupyterServerConfig(cfg JupyterConfig, port int) ([]byte, error) {
	if port == 0 {
		port = JupyterPort
	}
	ping := int(cfg.WebsocketPingIntervalSeconds)
	server := map[string]any{
		"ip":                           "127.0.0.1", // port-forward reaches loopback; other pods do not
		"port":                         port,
		"port_retries":                 0, // another port would be unreachable: fail instead
		"open_browser":                 false,
		"allow_root":                   false,
		"allow_remote_access":          false, // Host header must be local: no DNS rebinding
		"disable_check_xsrf":           false,
		"allow_unauthenticated_access": false,
		"terminals_enabled":            true,
		"shutdown_no_activity_timeout": 0, // the entrypoint decides about idleness
		"tornado_settings": map[string]any{
			// jupyter_server's own websockets (kernels, terminals) ping every
			// ws_ping_interval milliseconds; Tornado's websocket_ping_interval, in
			// seconds, covers extensions' plain Tornado websockets.
			"ws_ping_interval":        ping * 1000,
			"websocket_ping_interval": ping,
		},
	}
	kernels := map[string]any{
		// Never cull a busy kernel or one with a browser attached: long training runs
		// must not end by surprise. 0 switches culling off.
		"cull_idle_timeout": int(cfg.CullIdleKernelsAfterSeconds),
		"cull_busy":         false,
		"cull_connected":    false,
	}
	if cfg.CullIdleKernelsAfterSeconds > 0 {
		kernels["cull_interval"] = min(60, int(cfg.CullIdleKernelsAfterSeconds))
	}
	return json.MarshalIndent(map[string]any{
		"ServerApp":            server,
		"MappingKernelManager": kernels,
	}, "", "  ")
}

// JupyterLoginLog is the line the server logs (INFO) for a login with the token: the
// link `kubectl trainenv connect` opens (?token= in the URL) or the token typed into the
// login page. Clients that send the token in a header on every request (the entrypoint's
// own probe, API clients) are not logins and are not logged. The line never holds the
// token; the entrypoint's audit turns it into a jupyter.login event.
const JupyterLoginLog = "trainenv-audit: token login from"

// JupyterTokenConfig is the Python half of the configuration: it binds the token from
// JupyterTokenEnv (a Secret) so that it is neither on the command line nor in a file,
// and clears any password, so the token is the only way in; and it logs each login with
// the token (JupyterLoginLog), which jupyter_server logs at DEBUG only. Run with
// TRAITLETS_APPLICATION_RAISE_CONFIG_FILE_ERROR=1: an error here must stop the server,
// not start it with defaults. A failure of the login log never fails a request.
func JupyterTokenConfig() []byte {
	return []byte(`# Written by the trainenv entrypoint; changes are overwritten at each start.
import inspect
import os

from jupyter_server import version_info as _version

_token = os.environ.get("` + JupyterTokenEnv + `", "")
if not _token.strip():
    raise ValueError("` + JupyterTokenEnv + ` is empty: the server never runs without authentication")


def _audit_login(handler):
    try:
        handler.log.info("` + JupyterLoginLog + ` %s", handler.request.remote_ip)
    except Exception:
        pass


def _token_in_url(handler):
    try:
        return bool(handler.get_argument("token", ""))
    except Exception:
        return False


if _version[0] >= 2:
    from jupyter_server.auth.identity import PasswordIdentityProvider as _Provider

    class TrainenvIdentityProvider(_Provider):
        async def get_user_token(self, handler):
            user = super().get_user_token(handler)
            if inspect.isawaitable(user):
                user = await user
            if user is not None and _token_in_url(handler):
                _audit_login(handler)
            return user

        def process_login_form(self, handler):
            user = super().process_login_form(handler)
            if user is not None and not inspect.isawaitable(user):
                _audit_login(handler)
            return user

    c.ServerApp.identity_provider_class = TrainenvIdentityProvider
    c.IdentityProvider.token = _token
    c.PasswordIdentityProvider.hashed_password = ""
else:
    from jupyter_server.auth.login import LoginHandler as _Login

    class TrainenvLoginHandler(_Login):
        @classmethod
        def get_user_token(cls, handler):
            user = super().get_user_token(handler)
            if user is not None and _token_in_url(handler):
                _audit_login(handler)
            return user

        def post(self):
            super().post()
            if self.get_status() == 302:
                _audit_login(self)

    c.ServerApp.login_handler_class = TrainenvLoginHandler
    c.ServerApp.token = _token
    c.ServerApp.password = ""
`)
}

// JupyterConfigFile is the file passed as --config: the JSON, under the directory that
// also holds the Python half.
func JupyterConfigFile(dir string) string { return filepath.Join(dir, JupyterConfigBase+".json") }

// JupyterEnv is what the entrypoint adds to the server's environment: runtime files
// (connection files, the cookie secret) in dir, which is writable where the image's home
// may not be; config errors stop the server instead of being logged and skipped.
func JupyterEnv(dir string) []string {
	return []string{
		"JUPYTER_RUNTIME_DIR=" + filepath.Join(dir, "runtime"),
		"TRAITLETS_APPLICATION_RAISE_CONFIG_FILE_ERROR=1",
	}
}
