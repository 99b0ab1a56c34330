"""A small local web server for the capture page (stdlib http.server only).

Bound to 127.0.0.1. Every request must carry the server's key, a random
token (secrets.token_urlsafe) that only the printed address holds: as the
first path segment (http://127.0.0.1:PORT/KEY/, what `genseq capture`
prints and opens; the page's relative links keep it), or in an
X-Genseq-Token header (the page's JavaScript sends it), or as ?token=KEY.
Keys are compared in constant time. So another local user or program, or a
web page that guesses the port, can neither read the state nor write lines.

Routes, below the key: GET / (the page), GET /page.js, GET /api/state,
POST /api/submit {index, text, strokes}, POST /api/skip {index},
POST /api/undo {id}. Answers are JSON; errors are {"error": message} with
400 (bad line), 409 (stale prompt; the answer carries "state"), 403 (no or
a wrong key, a foreign Host or Origin), 404, 405, 411, 413, 415 or 500.
Requests must name this server in Host (no DNS rebinding), POSTs must be
JSON from this origin (no cross-site form posts).

A request must arrive within REQUEST_DEADLINE seconds (a client that sends
a byte now and then is cut off), and after Ctrl-C open requests get
SHUTDOWN_GRACE seconds before their connections are cut: a stalled client
never holds the server open. A line being saved is always finished first.
"""
from __future__ import annotations

import errno
import hmac
import json
import os
import secrets
import socket
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qsl, urlsplit

from ..errors import GenseqError, first_line
from .prompts import load_prompts
from .session import BadLine, CaptureSession, Limits, Stale

HOST = "127.0.0.1"
MAX_BODY = 8 * 1024 * 1024  # bytes; a long line with pressure is well under 1 MiB
REQUEST_TIMEOUT = 10  # seconds of silence from a client while it sends a request
REQUEST_DEADLINE = 30  # seconds from connecting to the end of the answer, however slowly a client sends
SHUTDOWN_GRACE = 3  # seconds that open requests get to finish after Ctrl-C
TOKEN_HEADER = "X-Genseq-Token"
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
        self.token = secrets.token_urlsafe(24)
        self._conns: dict[socket.socket, float] = {}  # open connections -> when they were accepted
        self._conns_lock = threading.Lock()
        try:
            super().__init__((HOST, port), _Handler)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise GenseqError(f"port {port} is in use; choose another with --port (0 = any free port)") from None
            raise GenseqError(f"cannot listen on {HOST}:{port}: {err.strerror or err}") from None
        self.port = self.server_address[1]
        self.url = f"http://{HOST}:{self.port}/{self.token}/"
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

    def token_ok(self, given: str | None) -> bool:
        """Whether `given` is this server's key (constant-time comparison)."""
        return given is not None and hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode())

    # -- connections: a deadline per request, and a bounded wait on shutdown -------------
    def process_request(self, request, client_address):
        with self._conns_lock:
            self._conns[request] = time.monotonic()
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._conns_lock:
            self._conns.pop(request, None)
        super().shutdown_request(request)

    def _cut(self, older_than: float | None = None) -> None:
        """Shut down the connections accepted before `older_than` (all if None): their
        threads' reads and writes fail at once, and the threads end."""
        with self._conns_lock:
            conns = [c for c, t in self._conns.items() if older_than is None or t < older_than]
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed

    def service_actions(self) -> None:  # serve_forever calls this twice a second
        self._cut(older_than=time.monotonic() - REQUEST_DEADLINE)

    def server_close(self) -> None:
        self.socket.close()  # no new connections
        end = time.monotonic() + SHUTDOWN_GRACE
        while time.monotonic() < end:
            with self._conns_lock:
                if not self._conns:
                    break
            time.sleep(0.05)
        self._cut()  # whatever still trickles in is given up; a line being saved is saved
        super().server_close()  # joins the request threads

    def handle_error(self, request, client_address) -> None:
        err = sys.exc_info()[1]
        if isinstance(err, OSError):  # a client that went away or was cut off: nothing to say
            return
        print(f"genseq capture: error while answering a request: {type(err).__name__}: {first_line(err)}",
              file=sys.stderr)


def open_capture(path: str | os.PathLike, opts: CaptureOptions = CaptureOptions()) -> CaptureServer:
    """A capture server for the JSONL file `path` (created if missing, only ever appended to),
    listening on 127.0.0.1; call `.run()` to serve. Its address is `.url`."""
    session = CaptureSession(path, load_prompts(opts.prompts), opts.limits)
    return CaptureServer(session, opts.port)


class _Handler(BaseHTTPRequestHandler):
    server: CaptureServer
    timeout = REQUEST_TIMEOUT  # per read; REQUEST_DEADLINE bounds the whole request
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

    def _route(self) -> str | None:
        """The route asked for, below the key; None (and a 403 sent) when the key
        is missing or wrong."""
        path, _, query = self.path.partition("?")
        first, slash, rest = path.lstrip("/").partition("/")
        if self.server.token_ok(first):
            if not slash:  # /KEY: the page's relative links need /KEY/
                self.send_response(308)
                self.send_header("Location", f"/{first}/" + (f"?{query}" if query else ""))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            return "/" + rest
        given = self.headers.get(TOKEN_HEADER)
        if given is None:
            given = next((v for k, v in parse_qsl(query) if k == "token"), None)
        if self.server.token_ok(given):
            return path
        self._error(403, "missing or wrong key; open the address that genseq capture printed")
        return None

    def do_GET(self) -> None:
        path = self._route() if self._host_ok() else None
        if path is None:
            return
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

    def _too_large(self) -> bool:
        """Refuse an oversized body (413) before anything else, without reading it."""
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return False  # _body answers 411
        if length > MAX_BODY:
            self.close_connection = True
            self._error(413, f"request too large (> {MAX_BODY} bytes)")
            return True
        return False

    def _body(self):
        if not self.headers.get("Content-Type", "").startswith("application/json"):
            self._error(415, "send JSON (Content-Type: application/json)")
            return None
        origin = self.headers.get("Origin")
        if origin is not None and not _same_origin(origin, self.server.hosts):
            self._error(403, "cross-origin request refused")
            return None
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._error(411, "Content-Length required")
            return None
        if length < 0:
            self._error(400, "bad Content-Length")
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
        if not self._host_ok() or self._too_large():
            return
        path = self._route()
        if path is None:
            return
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
        except Exception as err:  # noqa: BLE001  a bug: the page still gets an answer, the log one line
            print(f"genseq capture: {type(err).__name__}: {first_line(err)}", file=sys.stderr)
            self._error(500, f"internal error ({type(err).__name__}); see the terminal running genseq capture")
        else:
            self._json(200, state)


def _same_origin(origin: str, hosts: set[str]) -> bool:
    """Whether an Origin header names this server (http, one of `hosts`); a path
    after the host, which no browser sends, is ignored."""
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme == "http" and parts.netloc in hosts


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
