"""What the studio page asks for, without HTTP: write a text line by line as
messages, keep the finished drawings for download, sample text.

A write is streamed as JSON messages (one dict each, the server sends them as
NDJSON):
- {"type": "start", "job": id, "lines": [text per line, "" for a blank one]};
- {"type": "line", "line": i, "final": bool, "from": n, "points": [[dx, dy, pen], ...]}:
   line i now holds its first n points (data units, as before) followed by
   `points`; "final" once it is finished. The line grows while it is written
   (every few steps, or at every chosen word), and its final version may
   still change its end;
- {"type": "layout", "width", "height", "rows": [[line, x0, y0, scale], ...]}
   after each round of "line" messages: every line so far placed on the page
   exactly as the downloads will be (svg.layout): page (x, y) = (x0 + scale *
   x, y0 - scale * y) of the line's running sum of offsets;
- {"type": "done", "job": id, "warnings": [...]} or {"type": "error", "error": message}.

The lines are exactly those `genseq write` gives for the same options (the
same batches and seeds; showing them draws no random numbers), and every
download renders the job's finished lines with its page options.
"""
from __future__ import annotations

import json
import math
import os
import secrets
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import GenseqError
from ..render import PageOptions, layout, render_pages

MAX_TEXT = 2_000  # characters per write (about a page; the CLI takes more)
MAX_SAMPLE = 5_000  # characters per text sample
KEEP_JOBS = 16  # finished drawings kept for download
QUALITY = {"fast": 1, "good": 4, "best": 8}  # candidates per line (write --candidates)
DOWNLOADS = {  # kind -> (file name, content type)
    "svg": ("handwriting.svg", "image/svg+xml"),
    "animated": ("handwriting-animated.svg", "image/svg+xml"),
    "plotter": ("handwriting-plotter.svg", "image/svg+xml"),
    "png": ("handwriting.png", "image/png"),
    "pdf": ("handwriting.pdf", "application/pdf"),
}

Emit = Callable[[dict], None]


class Stopped(Exception):
    """The server is stopping or the page went away: the work in progress ends here."""


@dataclass
class Job:
    lines: list  # (N, 3) data-unit offsets per line, None for a blank line
    texts: list[str]
    page: PageOptions


def _number(obj: dict, key: str, default, lo: float, hi: float, kind=float):
    v = obj.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and v != int(v)):
        raise GenseqError(f"{key} must be a{'n integer' if kind is int else ' number'}")
    if not lo <= v <= hi:
        raise GenseqError(f"{key} must be between {lo:g} and {hi:g}")
    return kind(v)


def _text(obj: dict, key: str, limit: int, what: str) -> str:
    v = obj.get(key, "")
    if not isinstance(v, str):
        raise GenseqError(f"{key} must be text")
    if len(v) > limit:
        raise GenseqError(f"the {what} has {len(v):,} characters; the limit is {limit:,} "
                          "(genseq studio --max-text raises it)")
    return v


class StudioSession:
    """The models (loaded once), the styles, and the finished drawings of one studio."""

    def __init__(self, model: str | os.PathLike | None = None, style_file: str | os.PathLike | None = None,
                 text_models: tuple = (), max_text: int = MAX_TEXT):
        from ..hand.api import load_hand_model, styles_of
        from ..text.api import load_text_model
        self.hm = load_hand_model(model)
        if self.hm.config.kind != "synthesis":
            raise GenseqError("the studio needs a synthesis model (one that writes given text)")
        self.max_text = max_text
        self.text_models = {"bundled": None, **model_labels(text_models)}
        # Loaded now: a missing file or one that is not a text model is refused at start, not on first use.
        self._text_cache: dict = {name: load_text_model(p) for name, p in self.text_models.items() if p}
        self.styles = styles_of(self.hm)
        self._tmp = tempfile.TemporaryDirectory(prefix="genseq-studio-")
        self._lock = threading.Lock()
        self.mine: Path | None = None
        self.mine_name = ""
        self.mine_preview = ""
        if style_file is not None:
            self.set_mine(read_small(Path(style_file)), Path(style_file).name)
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self.previews = [self._preview(p) for p in self._style_lines()]

    def close(self) -> None:
        self._tmp.cleanup()

    # -- styles ------------------------------------------------------------------------------
    def _style_lines(self) -> list[np.ndarray]:
        """The styles' lines as the picker shows them: for a model fine-tuned on one writer's
        lines stood upright, leant as the lines it writes will be (hand.slant.model_lean)."""
        from ..hand.slant import lean_to, model_lean
        k = model_lean(self.hm.meta)
        return [s.points if k is None else lean_to(s.points, k) for s in self.styles]

    @staticmethod
    def _preview(points: np.ndarray) -> str:
        """A style's line as a small SVG: what the picker shows."""
        return render_pages([points], PageOptions(width=420, margin=6, max_text_height=16, stroke_width=1.2))[0]

    def set_mine(self, data: bytes, name: str) -> dict:
        """Use a file of the user's lines as the style "mine": JSON Lines (genseq capture
        writes one), or InkML when `name` ends in .inkml."""
        from ..hand.sample import denormalise
        from ..hand.api import WriteOptions, load_style
        from ..hand.slant import lean_to
        from ..strokes.ownink import is_inkml
        name = Path(name).name[:80]
        path = Path(self._tmp.name) / f"mine-{secrets.token_hex(4)}{'.inkml' if is_inkml(name) else '.jsonl'}"
        path.write_bytes(data)
        try:
            style = load_style(self.hm, WriteOptions(style_file=path))
        except GenseqError as err:
            path.unlink(missing_ok=True)
            why = str(err).removeprefix(f"{path}: ").replace(str(path), name).replace(path.name, name)  # no temp name
            raise GenseqError(f"{name}: {why}") from None
        config = self.hm.config
        with self._lock:
            old, self.mine, self.mine_name = self.mine, path, name
            line = denormalise(style.points, config.norm_mean, config.norm_std)
            # leant as the written lines will be (it primes stood upright: hand.slant)
            self.mine_preview = self._preview(line if style.shear is None else lean_to(line, style.shear))
        if old is not None:
            old.unlink(missing_ok=True)
        return {"name": self.mine_name, "preview": self.mine_preview}

    def info(self) -> dict:
        from ..hand.api import DEFAULT_BIAS, OWN_HAND_BIAS, WriteOptions, model_styles
        w, p = WriteOptions(), PageOptions()
        own = bool(model_styles(self.hm))  # a fine-tuned model: its styles are its writer's lines
        return {
            "styles": self.previews,
            "mine": {"name": self.mine_name, "preview": self.mine_preview} if self.mine else None,
            "alphabet": self.hm.config.alphabet,
            "max_text": self.max_text,
            "quality": QUALITY,
            "text_models": list(self.text_models),
            "defaults": {"bias": DEFAULT_BIAS, "own_bias": OWN_HAND_BIAS,
                         "own_styles": own, "seed": w.seed, "quality": "best", "color": p.color,
                         "width": p.stroke_width, "page_width": p.width, "align": p.align},
        }

    # -- writing -----------------------------------------------------------------------------
    def options(self, obj: dict):
        """(WriteOptions, PageOptions) from a request's JSON; GenseqError names what is wrong."""
        from ..hand.api import WriteOptions
        style = obj.get("style", "default")
        quality = obj.get("quality", "best")
        if quality not in QUALITY:
            raise GenseqError(f"quality must be one of {', '.join(QUALITY)}")
        extra: dict = {}
        if style == "mine":
            if self.mine is None:
                raise GenseqError("no handwriting of yours is loaded: choose a JSONL file first")
            extra["style_file"] = self.mine
        elif style == "none":
            extra["unprimed"] = True
        elif style != "default":
            if isinstance(style, bool) or not isinstance(style, int) or not 0 <= style < len(self.styles):
                raise GenseqError(f"style must be 'default', 'mine', 'none' or 0 to {len(self.styles) - 1}")
            extra["style"] = style
        bias = None if obj.get("bias") is None else _number(obj, "bias", None, 0, 10)  # None: api.style_bias
        opts = WriteOptions(bias=bias,
                            seed=_number(obj, "seed", 0, 0, 2**53, int), candidates=QUALITY[quality],
                            max_text=self.max_text, **extra)
        color = obj.get("color", "black")
        if not isinstance(color, str):
            raise GenseqError("color must be text")
        align = obj.get("align", "left")
        page = PageOptions(width=_number(obj, "page_width", 1000, 200, 5000), align=str(align), color=color,
                           stroke_width=_number(obj, "width", PageOptions.stroke_width, 0.1, 20),
                           background="white")
        opts.check()
        return opts, page

    def write(self, obj: dict, emit: Emit, stopped: Callable[[], bool] = lambda: False) -> str:
        """Write the request's text, emitting the messages of the module docstring; returns the job id."""
        from ..hand.sample import denormalise
        from ..hand.api import clean_text, wrap_lines, write_lines
        text = _text(obj, "text", self.max_text, "text")
        opts, page = self.options(obj)
        config = self.hm.config
        texts = wrap_lines(clean_text(text, config.alphabet, opts.unknown), opts.max_chars)
        if not texts:
            raise GenseqError("nothing to write: the text is empty or only spaces")
        job = secrets.token_hex(6)
        emit({"type": "start", "job": job, "lines": texts})
        lines: list = [None] * len(texts)

        def show(grown: dict[int, np.ndarray], final: bool) -> None:
            if stopped():
                raise Stopped()
            for i, pts in grown.items():
                new = denormalise(pts, config.norm_mean, config.norm_std)
                same = 0 if lines[i] is None else _common_prefix(lines[i], new)
                lines[i] = new
                emit({"type": "line", "line": i, "final": final, "from": same,
                      "points": np.round(new[same:].astype(np.float64), 2).tolist()})
            emit({"type": "layout", **_layout(lines, page)})  # once per round: it places every line

        written = write_lines(texts, self.hm, opts, progress=lambda grown: show(grown, False),
                              on_line=lambda i, ln: show({i: ln.points}, True))
        with self._lock:
            self._jobs[job] = Job(lines, texts, page)
            while len(self._jobs) > KEEP_JOBS:
                self._jobs.popitem(last=False)
        bad = [f"{w.text!r} ({w.status})" for w in written if w is not None and w.status != "ok"]
        emit({"type": "done", "job": job,
              "warnings": [f"{len(bad)} line(s) still looked wrong after re-sampling: " + "; ".join(bad[:5])]
              if bad else []})
        return job

    def download(self, job: str, kind: str) -> tuple[bytes, str, str]:
        """(file bytes, content type, file name) of a finished drawing."""
        with self._lock:
            found = self._jobs.get(job)
        if found is None:
            raise GenseqError("that drawing is no longer kept: press Write again")
        if kind not in DOWNLOADS:
            raise GenseqError(f"unknown download {kind!r}")
        name, ctype = DOWNLOADS[kind]
        return render_file(found.lines, found.page, kind), ctype, name

    # -- text ----------------------------------------------------------------------------------
    def sample(self, obj: dict, emit: Emit, stopped: Callable[[], bool] = lambda: False) -> None:
        """Sample text, emitting {"type": "text", "text": piece} as it is generated, then {"type": "done"}."""
        from ..text.api import load_text_model, sample_text
        name = obj.get("model", "bundled")
        if name not in self.text_models:
            raise GenseqError(f"unknown text model {name!r}")
        prime = _text(obj, "prime", MAX_SAMPLE, "prime")
        options = dict(length=_number(obj, "length", 400, 1, MAX_SAMPLE, int),
                       temperature=_number(obj, "temperature", 0.8, 0.05, 5.0),
                       seed=_number(obj, "seed", 0, 0, 2**53, int))
        with self._lock:
            if name not in self._text_cache:
                self._text_cache[name] = load_text_model(self.text_models[name])
            tm = self._text_cache[name]
        for piece in sample_text(prime, tm, stream=True, **options):
            if stopped():
                raise Stopped()
            emit({"type": "text", "text": piece})
        emit({"type": "done"})


def model_labels(paths) -> dict:
    """{label: path} for the page's model picker: each file's name, or as many of
    its last path parts as tell it from the others (`shakes/best.pt`,
    `mine/best.pt`); the same file given twice is listed once."""
    paths = list({Path(p).resolve(): Path(p) for p in paths}.values())
    depth = {p: 1 for p in paths}
    names = {p: p.parts[1:] if p.is_absolute() else p.parts for p in paths}
    while True:
        labels = {p: "/".join(names[p][-depth[p]:]) if depth[p] <= len(names[p]) else str(p.resolve())
                  for p in paths}
        taken = [labels[p] for p in paths] + ["bundled"]
        clash = [p for p in paths if taken.count(labels[p]) > 1]
        if not clash:
            return {labels[p]: str(p) for p in paths}
        for p in clash:
            depth[p] += 1


def render_file(lines: list, page: PageOptions, kind: str) -> bytes:
    """One download of laid-out lines: svg, animated (svg), plotter (svg), png or pdf."""
    if kind == "svg":
        return render_pages(lines, page)[0].encode("utf-8")
    if kind == "animated":
        from ..render import render_animated
        return render_animated(lines, page)[0].encode("utf-8")
    if kind == "plotter":
        from ..render import render_plotter
        return render_plotter(lines, page)[0].encode("utf-8")
    from ..render.raster import render_pdf, render_png
    return render_png(lines, page)[0] if kind == "png" else render_pdf(lines, page)


def read_small(path: Path, limit: int = 8 * 1024 * 1024) -> bytes:
    """A style file's bytes (a regular file of at most `limit` bytes)."""
    if not path.is_file():
        raise GenseqError(f"no such style file: {path}")
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise GenseqError(f"{path}: larger than {limit // 2**20} MiB; a style needs a few lines")
    return data


def _common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    """How many leading rows a and b share."""
    n = min(len(a), len(b))
    differ = np.flatnonzero((a[:n] != b[:n]).any(axis=1))
    return int(differ[0]) if len(differ) else n


def _layout(lines: list, page: PageOptions) -> dict:
    """Where every line written so far goes on the page (the download's own layout)."""
    if not any(ln is not None for ln in lines):
        return {"width": page.width, "height": 2 * page.margin, "rows": []}
    placements, heights, _ = layout(lines, page)
    return {"width": page.width, "height": math.ceil(heights[0] * 100) / 100,  # as the SVG's page height
            "rows": [[p.line, round(p.x0, 3), round(p.y0, 3), p.scale] for p in placements]}


def message(obj: dict) -> bytes:
    """One NDJSON line."""
    return json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8") + b"\n"


