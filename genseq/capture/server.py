"""The capture page's server: `genseq.web.LocalServer` with the capture routes.

Routes, below the key: GET / (the page), GET /page.js, GET /api/state,
POST /api/submit {index, text, strokes}, POST /api/skip {index},
POST /api/undo {id}. Answers are JSON; errors are {"error": message} with
400 (bad line), 409 (stale prompt; the answer carries "state"), 500, or the
checks of genseq.web (403 for no or a wrong key, a foreign Host or Origin).
A line being saved is always finished before the server stops.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Callable

from ..errors import GenseqError, first_line
from ..web import LocalHandler, LocalServer
from .prompts import load_prompts
from .session import BadLine, CaptureSession, Limits, Stale

_STATIC = {"/": ("page.html", "text/html; charset=utf-8"),
           "/page.js": ("page.js", "text/javascript; charset=utf-8")}


@dataclass(frozen=True)
class CaptureOptions:
    """Options of `open_capture`: prompts None = the bundled list; port 0 = any free port."""

    prompts: str | os.PathLike | None = None
    port: int = 0
    limits: Limits = Limits()


class CaptureServer(LocalServer):
    """The HTTP server of one capture session. `run()` serves until Ctrl-C."""

    def __init__(self, session: CaptureSession, port: int = 0):
        self.session = session
        super().__init__(_Handler, port, "capture", __package__, _STATIC)

    def run(self, ready: Callable[[], None] | None = None) -> int:
        """Call `ready()`, serve until Ctrl-C or SIGTERM (or `shutdown()` from another
        thread); returns the lines saved."""
        self.serve(ready)
        return self.session.saved


def open_capture(path: str | os.PathLike, opts: CaptureOptions = CaptureOptions()) -> CaptureServer:
    """A capture server for the JSONL file `path` (created if missing, only ever appended to),
    listening on 127.0.0.1; call `.run()` to serve. Its address is `.url`."""
    session = CaptureSession(path, load_prompts(opts.prompts), opts.limits)
    return CaptureServer(session, opts.port)


class _Handler(LocalHandler):
    server: CaptureServer
    server_version = "genseq-capture"
    GETS = {"/api/state": "_state"}
    POSTS = {route: "_change" for route in ("/api/submit", "/api/skip", "/api/undo")}

    def _state(self, params: dict) -> None:
        self._json(200, self.server.session.state())

    def _change(self, path: str, obj: dict) -> None:
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
