"""A small local web server for the capture page (stdlib http.server only).

Bound to 127.0.0.1. Routes: GET / (the page), GET /page.js, GET /api/state,
POST /api/submit {index, text, strokes}, POST /api/skip {index},
POST /api/undo {id}. Answers are JSON; errors are {"error": message} with
400 (bad line), 409 (stale prompt; the answer carries "state"), 403, 404,
405, 411, 413 or 415. Requests must name this server in Host (no DNS
rebinding), POSTs must be JSON from this origin (no cross-site form posts).
"""
from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from ..errors import GenseqError
from .prompts import load_prompts
from .session import BadLine, CaptureSession, Limits, Stale

HOST = "127.0.0.1"
MAX_BODY = 8 * 1024 * 1024  # bytes; a long line with pressure is well under 1 MiB
_STATIC = {"/": ("page.html", "text/html; charset=utf-8"),
           "/page.js": ("page.js", "text/javascript; charset=utf-8")}
_POSTS = ("/api/submit", "/api/skip", "/api/undo")
_CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'"


@dataclass(frozen=True)
class CaptureOptions:
    """Options of `open_capture`: prompts None = the bundled list; port 0 = any free port."""

    prompts: str | os.PathLike | None = None
    port: int = 0
    limits: Limits = Limits()


class CaptureServer(ThreadingHTTPServer):
    """The HTTP server of one capture session. `run()` serves until Ctrl-C."""

    daemon_threads = False
    block_on_close = True  # server_close() waits for a line being saved

    def __init__(self, session: CaptureSession, port: int = 0):
        self.session = session
        try:
            super().__init__((HOST, port), _Handler)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise GenseqError(f"port {port} is in use; choose another with --port (0 = any free port)") from None
            raise GenseqError(f"cannot listen on {HOST}:{port}: {err.strerror or err}") from None
        self.port = self.server_address[1]
        self.url = f"http://{HOST}:{self.port}/"
        self.hosts = {f"{HOST}:{self.port}", f"localhost:{self.port}"}
        self.static = {route: (resources.files(__package__).joinpath(name).read_bytes(), ctype)
                       for route, (name, ctype) in _STATIC.items()}

    def run(self) -> int:
        """Serve until Ctrl-C (or `shutdown()` from another thread); returns the lines saved."""
        try:
            self.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self.server_close()
        return self.session.saved


def open_capture(path: str | os.PathLike, opts: CaptureOptions = CaptureOptions()) -> CaptureServer:
    """A capture server for the JSONL file `path` (created if missing, only ever appended to),
    listening on 127.0.0.1; call `.run()` to serve. Its address is `.url`."""
    session = CaptureSession(path, load_prompts(opts.prompts), opts.limits)
    return CaptureServer(session, opts.port)


class _Handler(BaseHTTPRequestHandler):
    server: CaptureServer
    timeout = 10  # seconds; a stalled client cannot hold a thread (or Ctrl-C) for long
    server_version = "genseq-capture"
    sys_version = ""

    def log_message(self, format, *args):  # noqa: A002  (the base class's name)
        pass  # the terminal shows the URL and the summary, not every request

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", _CSP)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: dict) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8")

    def _error(self, status: int, message: str, **extra) -> None:
        self._json(status, {"error": message, **extra})

    def _host_ok(self) -> bool:
        if self.headers.get("Host", "") not in self.server.hosts:
            self._error(403, "unknown Host; open the address that genseq capture printed")
            return False
        return True

    def do_GET(self) -> None:
        if not self._host_ok():
            return
        path = self.path.split("?", 1)[0]
        if path in self.server.static:
            body, ctype = self.server.static[path]
            self._send(200, body, ctype)
        elif path == "/api/state":
            self._json(200, self.server.session.state())
        elif path in _POSTS:
            self._error(405, "use POST")
        else:
            self._error(404, "not found")

    do_HEAD = do_GET

    def _body(self):
        if not self.headers.get("Content-Type", "").startswith("application/json"):
            self._error(415, "send JSON (Content-Type: application/json)")
            return None
        origin = self.headers.get("Origin")
        if origin is not None and origin not in {f"http://{h}" for h in self.server.hosts}:
            self._error(403, "cross-origin request refused")
            return None
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._error(411, "Content-Length required")
            return None
        if length < 0 or length > MAX_BODY:
            self.close_connection = True  # do not read an oversized body
            self._error(413, f"request too large (> {MAX_BODY} bytes)")
            return None
        try:
            obj = json.loads(self.rfile.read(length).decode("utf-8"))
        except (ValueError, RecursionError):
            self._error(400, "invalid JSON")
            return None
        if not isinstance(obj, dict):
            self._error(400, "expected a JSON object")
            return None
        return obj

    def do_POST(self) -> None:
        if not self._host_ok():
            return
        path = self.path.split("?", 1)[0]
        if path not in _POSTS:
            self._error(404, "not found")
            return
        obj = self._body()
        if obj is None:
            return
        session = self.server.session
        try:
            if path == "/api/submit":
                state = session.submit(_index(obj), _str(obj, "text"), obj.get("strokes"))
            elif path == "/api/skip":
                state = session.skip(_index(obj))
            else:
                state = session.undo(_str(obj, "id"))
        except Stale as err:
            self._error(409, str(err), state=session.state())
        except GenseqError as err:  # BadLine, a malformed request, or a file that cannot be written
            self._error(400 if isinstance(err, BadLine) else 500, str(err))
        except OSError as err:  # e.g. disk full while appending: the line is not saved
            self._error(500, f"cannot write {session.path.name}: {err.strerror or err}; the line was not saved")
        else:
            self._json(200, state)


def _index(obj: dict) -> int:
    i = obj.get("index")
    if not isinstance(i, int) or isinstance(i, bool):
        raise BadLine("missing prompt index")
    return i


def _str(obj: dict, key: str) -> str:
    v = obj.get(key)
    if not isinstance(v, str):
        raise BadLine(f"missing {key}")
    return v
