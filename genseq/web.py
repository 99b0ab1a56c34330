"""The local web server under `genseq capture` and `genseq studio` (stdlib http.server only).

Bound to 127.0.0.1. Every request must carry the server's key, a random
token (secrets.token_urlsafe) that only the printed address holds: as the
first path segment (http://127.0.0.1:PORT/KEY/, what the command prints and
opens; the page's relative links keep it), or in an X-Genseq-Token header
(the page's JavaScript sends it), or as ?token=KEY. Keys are compared in
constant time. So another local user or program, or a web page that guesses
the port, can neither read nor change anything.

Requests must name this server in Host (no DNS rebinding); POSTs must be
JSON from this origin (no cross-site form posts). Errors are JSON
{"error": message} with 403 (no or a wrong key, a foreign Host or Origin),
404, 405, 411, 413, 415, or what the page's own routes decide.

A request must arrive within REQUEST_DEADLINE seconds (a client that sends a
byte now and then is cut off); an answer that streams for longer (the
studio writing a long text) is exempt once its request is read
(`LocalServer.answering`). After Ctrl-C open requests get SHUTDOWN_GRACE
seconds before their connections are cut: a stalled client never holds the
server open. Each request has its own thread, so one slow answer never
blocks another tab.
"""
from __future__ import annotations

import errno
import hmac
import json
import math
import secrets
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Callable
from urllib.parse import parse_qsl, urlsplit

from .errors import GenseqError, first_line

HOST = "127.0.0.1"
MAX_BODY = 8 * 1024 * 1024  # bytes; a long captured line with pressure is well under 1 MiB
REQUEST_TIMEOUT = 10  # seconds of silence from a client while it sends a request
REQUEST_DEADLINE = 30  # seconds from connecting until the request is read (and answered, unless streaming)
SHUTDOWN_GRACE = 3  # seconds that open requests get to finish after Ctrl-C
TOKEN_HEADER = "X-Genseq-Token"
CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; base-uri 'none'; form-action 'none'"


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


class LocalServer(ThreadingHTTPServer):
    """A keyed server on 127.0.0.1 serving a package's static files; `run()` serves until Ctrl-C.

    name: what the command is called, for messages; static: route -> (file in
    `package`, content type)."""

    daemon_threads = False
    block_on_close = True  # server_close() waits for work in progress (a line being saved)

    def __init__(self, handler, port: int, name: str, package: str, static: dict[str, tuple[str, str]]):
        self.name = name
        self.token = secrets.token_urlsafe(24)
        self.stopping = threading.Event()  # set on shutdown: long answers stop at their next step
        self._conns: dict[socket.socket, float] = {}  # open connections -> when accepted (inf: answering)
        self._conns_lock = threading.Lock()
        try:
            super().__init__((HOST, port), handler)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise GenseqError(f"port {port} is in use; choose another with --port (0 = any free port)") from None
            raise GenseqError(f"cannot listen on {HOST}:{port}: {err.strerror or err}") from None
        self.port = self.server_address[1]
        self.url = f"http://{HOST}:{self.port}/{self.token}/"
        self.hosts = {f"{HOST}:{self.port}", f"localhost:{self.port}"}
        self.static = {route: (resources.files(package).joinpath(file).read_bytes(), ctype)
                       for route, (file, ctype) in static.items()}

    def serve(self, ready: Callable[[], None] | None = None) -> None:
        """Call `ready()` (e.g. print the address), then serve until Ctrl-C or
        SIGTERM (or `shutdown()` from another thread), then close: both signals
        stop it alike, so its temporary files go and a line being saved is saved."""
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
        try:
            if ready is not None:
                ready()
            self.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous)
            self.server_close()

    def token_ok(self, given: str | None) -> bool:
        """Whether `given` is this server's key (constant-time comparison)."""
        return given is not None and hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode())

    # -- connections: a deadline per request, and a bounded wait on shutdown -------------
    def process_request(self, request, client_address):
        with self._conns_lock:
            self._conns[request] = time.monotonic()
        super().process_request(request, client_address)

    def answering(self, request) -> None:
        """The request on this connection is read: its (streamed) answer may take longer than the deadline."""
        with self._conns_lock:
            if request in self._conns:
                self._conns[request] = math.inf

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
        self.stopping.set()
        self.socket.close()  # no new connections
        end = time.monotonic() + SHUTDOWN_GRACE
        while time.monotonic() < end:
            with self._conns_lock:
                if not self._conns:
                    break
            time.sleep(0.05)
        self._cut()  # whatever still trickles in is given up; work being saved is saved
        super().server_close()  # joins the request threads

    def handle_error(self, request, client_address) -> None:
        err = sys.exc_info()[1]
        if isinstance(err, OSError):  # a client that went away or was cut off: nothing to say
            return
        print(f"genseq {self.name}: error while answering a request: {type(err).__name__}: {first_line(err)}",
              file=sys.stderr)


class LocalHandler(BaseHTTPRequestHandler):
    """Answers with keys, Host and Origin checked. Subclasses name their routes:
    GETS maps a route to the method answering it, called with the query (a
    dict); POSTS maps a route to the method called with (route, the JSON body)."""

    server: LocalServer
    timeout = REQUEST_TIMEOUT  # per read; REQUEST_DEADLINE bounds the whole request
    sys_version = ""
    GETS: dict[str, str] = {}
    POSTS: dict[str, str] = {}

    def do_GET(self) -> None:
        route = self._get_route()
        if route is None:
            return
        path, params = route
        if path in self.GETS:
            getattr(self, self.GETS[path])(params)
        elif path in self.POSTS:
            self._error(405, "use POST")
        else:
            self._error(404, "not found")

    do_HEAD = do_GET

    def do_POST(self) -> None:
        route = self._post_route()
        if route is None:
            return
        path = route[0]
        if path not in self.POSTS:
            self._error(404, "not found")
            return
        obj = self._body()
        if obj is not None:
            getattr(self, self.POSTS[path])(path, obj)

    def log_message(self, format, *args):  # noqa: A002  (the base class's name)
        pass  # the terminal shows the URL and the summary, not every request

    def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self._common_headers(headers)
        if self.command != "HEAD":
            self.wfile.write(body)

    def _common_headers(self, headers: dict | None = None) -> None:
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CSP)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()

    def _json(self, status: int, obj: dict) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8")

    def _error(self, status: int, message: str, **extra) -> None:
        self._json(status, {"error": message, **extra})

    def _host_ok(self) -> bool:
        if self.headers.get("Host", "") not in self.server.hosts:
            self._error(403, f"unknown Host; open the address that genseq {self.server.name} printed")
            return False
        return True

    def _route(self) -> tuple[str, dict] | None:
        """(the route asked for below the key, the query); None (and a 403 or a
        redirect sent) when the key is missing or wrong."""
        path, _, query = self.path.partition("?")
        params = dict(parse_qsl(query))
        first, slash, rest = path.lstrip("/").partition("/")
        if self.server.token_ok(first):
            if not slash:  # /KEY: the page's relative links need /KEY/
                self.send_response(308)
                self.send_header("Location", f"/{first}/" + (f"?{query}" if query else ""))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            return "/" + rest, params
        given = self.headers.get(TOKEN_HEADER)
        if given is None:
            given = params.get("token")
        if self.server.token_ok(given):
            return path, params
        self._error(403, f"missing or wrong key; open the address that genseq {self.server.name} printed")
        return None

    def _get_route(self) -> tuple[str, dict] | None:
        """The route of a GET, after the Host and key checks; static files are answered here."""
        route = self._route() if self._host_ok() else None
        if route is not None and route[0] in self.server.static:
            body, ctype = self.server.static[route[0]]
            self._send(200, body, ctype)
            return None
        return route

    def _post_route(self) -> tuple[str, dict] | None:
        """The route of a POST, after the Host, size and key checks."""
        if not self._host_ok() or self._too_large():
            return None
        return self._route()

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

    def _body(self) -> dict | None:
        """The request's JSON object; None (and an error sent) when it is not one, or comes from another origin."""
        if not self.headers.get("Content-Type", "").startswith("application/json"):
            self._error(415, "send JSON (Content-Type: application/json)")
            return None
        origin = self.headers.get("Origin")
        if origin is not None and not same_origin(origin, self.server.hosts):
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


def same_origin(origin: str, hosts: set[str]) -> bool:
    """Whether an Origin header names this server (http, one of `hosts`); a path
    after the host, which no browser sends, is ignored."""
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme == "http" and parts.netloc in hosts
