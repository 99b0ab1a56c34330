"""The studio's server: `genseq.web.LocalServer` (127.0.0.1, a key in the
address, Host and Origin checks) with the studio's routes.

Routes, below the key:
- GET / (the page), /studio.js, /studio.css;
- GET /api/info: styles (SVG previews), defaults, limits, text models;
- POST /api/write {text, style, bias, seed, quality, color, width, page_width, align}:
  NDJSON messages as the lines are written (session.py);
- POST /api/mine {name, jsonl}: use the user's own lines (JSONL text) as the style "mine";
  {recorded: true}: the lines recorded so far on the capture page beside the studio;
- POST /api/sample {model, prime, temperature, length, seed}: NDJSON text pieces;
- GET /api/download?job=ID&kind=svg|animated|plotter|png|pdf: a finished drawing.
A streamed answer that fails after it started ends with {"type": "error", ...};
before that, errors are JSON {"error": message} with 400 (a request the CLI
would refuse, worded as the CLI words it) or 404.
"""
from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from typing import Callable

from ..capture import CaptureServer, open_capture
from ..errors import GenseqError, first_line
from ..web import LocalHandler, LocalServer
from .session import Stopped, StudioSession, message, read_small

_STATIC = {"/": ("page.html", "text/html; charset=utf-8"),
           "/studio.js": ("studio.js", "text/javascript; charset=utf-8"),
           "/studio.css": ("studio.css", "text/css; charset=utf-8")}


@dataclass(frozen=True)
class StudioOptions:
    """Options of `open_studio`: model None = the bundled one; port 0 = any free port;
    capture: a JSONL file that a capture page beside the studio records your lines into."""

    model: str | None = None
    style_file: str | None = None
    capture: str | None = None
    text_models: tuple = ()
    port: int = 0
    max_text: int = 2_000


class StudioServer(LocalServer):
    """The HTTP server of one studio. `serve()` serves until Ctrl-C, and serves
    `capture` (a capture page on a port and key of its own) for as long."""

    def __init__(self, session: StudioSession, port: int = 0, owns_session: bool = False,
                 capture: CaptureServer | None = None):
        self.session, self.owns_session, self.capture = session, owns_session, capture
        self._capturing: threading.Thread | None = None
        super().__init__(_Handler, port, "studio", __package__, _STATIC)

    def serve(self, ready: Callable[[], None] | None = None) -> None:
        if self.capture is not None and self._capturing is None:
            self._capturing = threading.Thread(target=self.capture.serve_forever, name="capture", daemon=True)
            self._capturing.start()
        super().serve(ready)

    def server_close(self) -> None:
        super().server_close()
        if self.capture is not None:
            if self._capturing is not None:
                self.capture.shutdown()  # returns once its serve_forever has stopped
            self.capture.server_close()  # a line being saved is saved
        if self.owns_session:
            self.session.close()

    def use_recorded(self) -> dict:
        """Make the lines recorded on the capture page so far the style "mine"."""
        if self.capture is None:
            raise GenseqError("this studio has no capture page: start it with --capture FILE")
        path = self.capture.session.path  # the capture session created it
        if not path.stat().st_size:
            raise GenseqError(f"no lines recorded in {path.name} yet: write a few on the capture page first")
        return self.session.set_mine(read_small(path), path.name)


def open_studio(opts: StudioOptions = StudioOptions()) -> StudioServer:
    """A studio server on 127.0.0.1 (models loaded); call `.serve()`. Its address is `.url`."""
    capture = open_capture(opts.capture) if opts.capture else None
    try:
        style = opts.style_file
        if style is None and capture is not None and capture.session.path.stat().st_size:
            style = opts.capture  # what was recorded before is "mine" at once
        session = StudioSession(opts.model, style, opts.text_models, opts.max_text)
        return StudioServer(session, opts.port, owns_session=True, capture=capture)
    except BaseException:
        if capture is not None:
            capture.server_close()
        raise


class _Handler(LocalHandler):
    server: StudioServer
    server_version = "genseq-studio"
    GETS = {"/api/info": "_info", "/api/download": "_download"}
    POSTS = {"/api/write": "_stream", "/api/sample": "_stream", "/api/mine": "_mine"}

    def _info(self, params: dict) -> None:
        capture = self.server.capture
        self._json(200, {**self.server.session.info(), "capture": capture.url if capture else None})

    def _download(self, params: dict) -> None:
        try:
            body, ctype, name = self.server.session.download(params.get("job", ""), params.get("kind", ""))
        except GenseqError as err:
            self._error(404, str(err))
            return
        self._send(200, body, ctype, {"Content-Disposition": f'attachment; filename="{name}"'})

    def _mine(self, path: str, obj: dict) -> None:
        if obj.get("recorded") is True:
            try:
                self._json(200, self.server.use_recorded())
            except GenseqError as err:
                self._error(400, str(err))
            return
        data, name = obj.get("jsonl"), obj.get("name", "mine.jsonl")
        if not isinstance(data, str) or not isinstance(name, str):
            self._error(400, "send {name, jsonl}: the file's name and its text")
            return
        try:
            self._json(200, self.server.session.set_mine(data.encode("utf-8"), name))
        except GenseqError as err:
            self._error(400, str(err))

    def _stream(self, path: str, obj: dict) -> None:
        """Answer with NDJSON as the session writes or samples (`work(obj, emit, stopped)`);
        the HTTP/1.0 answer ends when the connection closes, so no length is needed up front."""
        session = self.server.session
        work = session.write if path == "/api/write" else session.sample
        self.server.answering(self.request)
        self.close_connection = True
        started = False

        def emit(msg: dict) -> None:
            nonlocal started
            if not started:
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson; charset=utf-8")
                self._common_headers()
                started = True
            self.wfile.write(message(msg))  # a page that went away: OSError ends the work

        try:
            work(obj, emit, self.server.stopping.is_set)
        except Stopped:
            pass
        except GenseqError as err:
            if started:
                emit({"type": "error", "error": str(err)})
            else:
                self._error(400, str(err))
        except OSError:
            pass  # the page closed the connection
        except Exception as err:  # noqa: BLE001  a bug: the page still gets an answer, the log one line
            print(f"genseq studio: {type(err).__name__}: {first_line(err)}", file=sys.stderr)
            text = f"internal error ({type(err).__name__}); see the terminal running genseq studio"
            if started:
                emit({"type": "error", "error": text})
            else:
                self._error(500, text)
