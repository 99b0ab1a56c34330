"""W3C InkML -> genseq stroke file. The supported subset is listed in
datasets/inkml/README.md: <trace> with explicit values ("x y [more], x y ..."),
a <traceFormat> naming the X and Y channels, and text from
<annotation type="truth"> at file level or per <traceGroup>."""
from __future__ import annotations

import os
from pathlib import Path
from xml.etree.ElementTree import Element

import numpy as np


from ..errors import GenseqError
from .build import ImportOptions, Report, write_grouped
from .xmlsafe import parse_xml
from .clean import CleanOptions, Skip, check_text, clean_strokes, safe_id
from .normalise import RawLine
from .h5 import Sample

SOURCE = "InkML files"
UNITS = "InkML channel units, y flipped to grow upwards"
_XML_ID = "{http://www.w3.org/XML/1998/namespace}id"


InkmlOptions = ImportOptions  # the shared importer options (genseq.strokes.build)
TERMS = "terms of the InkML files' owner"


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(el: Element, name: str):
    return [c for c in el if _local(c.tag) == name]


def _truth(el: Element) -> str | None:
    for a in _children(el, "annotation"):
        if a.get("type") == "truth":
            return (a.text or "").strip()
    return None


def _channels(root: Element) -> tuple[int, int, bool]:
    """(x column, y column, y_down) from the first <traceFormat>; default 0, 1, y down."""
    for el in root.iter():
        if _local(el.tag) == "traceFormat":
            names = [c.get("name", "") for c in el.iter() if _local(c.tag) == "channel"]
            ys = [c for c in el.iter() if _local(c.tag) == "channel" and c.get("name") == "Y"]
            if "X" in names and "Y" in names:
                y_down = not (ys and ys[0].get("orientation") == "-ve")
                return names.index("X"), names.index("Y"), y_down
            raise Skip("traceFormat without X and Y channels")
    return 0, 1, True


def _trace_points(el: Element, xcol: int, ycol: int) -> list[tuple[float, float]]:
    pts = []
    for chunk in (el.text or "").split(","):
        vals = chunk.split()
        if not vals:
            continue
        if any(v[0] in "'\"!?*#" for v in vals):
            raise Skip("unsupported trace encoding (differences or hex)")
        try:
            pts.append((float(vals[xcol]), float(vals[ycol])))
        except (ValueError, IndexError):
            raise Skip("bad point") from None
    return pts


MAX_SAMPLE_POINTS = 100_000  # IAM-OnDB's longest line is about 12,000 points at full rate
MAX_REUSE = 2  # the samples of one file together hold at most this many times its traces' points


class Refused(list):
    """The strokes of a sample that `parse_inkml` refuses (e.g. `too many points`):
    reading them raises Skip(reason), so converters skip that sample alone."""

    def __init__(self, reason: str):
        super().__init__()
        self.reason = reason

    def __iter__(self):
        raise Skip(self.reason)


def parse_inkml(data: bytes, name: str) -> list[tuple[str, str, list, bool]]:
    """-> [(id, text, strokes, y_down)] per annotated group (or the whole file).

    Each trace is parsed once and used at most once per sample, however often
    a group references it. A sample of more than MAX_SAMPLE_POINTS points, and
    the samples beyond MAX_REUSE times the points of the file's traces, come
    back as `Refused("too many points")`: memory stays in proportion to the
    file's size. Raises Skip for a file that cannot be used."""
    try:
        return _parse_inkml(data, name)
    except RecursionError:  # a parser of deep XML; the walk below is iterative
        raise Skip("xml nested too deeply") from None


def _parse_inkml(data: bytes, name: str) -> list[tuple[str, str, list, bool]]:
    root = parse_xml(data)
    if _local(root.tag) != "ink":
        raise Skip("not InkML (root is not <ink>)")
    xcol, ycol, y_down = _channels(root)
    parsed: dict[Element, list] = {}  # every <trace>, parsed once, in document order
    by_id: dict[str, Element] = {}
    for el in root.iter():
        if _local(el.tag) == "trace":
            parsed[el] = _trace_points(el, xcol, ycol)
            if el.get("id") or el.get(_XML_ID):
                by_id[el.get(_XML_ID) or el.get("id")] = el
    budget = MAX_REUSE * sum(len(p) for p in parsed.values())

    def sample(sid: str, text: str, traces) -> tuple[str, str, list, bool]:
        nonlocal budget
        strokes, seen = [], set()
        for el in traces:
            if el is None:  # a reference to no trace of the file: the sample would miss ink
                return sid, text, Refused("unresolved traceDataRef"), y_down
            if el not in seen:
                seen.add(el)
                strokes.append(parsed[el])
        n = sum(len(s) for s in strokes)
        if n > MAX_SAMPLE_POINTS or n > budget:
            return sid, text, Refused("too many points"), y_down
        budget -= n
        return sid, text, strokes, y_down

    def group_traces(g: Element):
        for el in g.iter():
            tag = _local(el.tag)
            if tag == "trace":
                yield el
            elif tag == "traceView":  # traceDataRef="t2" or, as a URI reference, "#t2"
                yield by_id.get((el.get("traceDataRef") or "").removeprefix("#"))

    text = _truth(root)
    if text is not None:
        return [sample(name, text, parsed)]
    samples = []
    stack = list(reversed(_children(root, "traceGroup")))  # outermost annotated groups, in document order
    while stack:
        g = stack.pop()
        t = _truth(g)
        if t is not None:
            samples.append(sample(f"{name}:{len(samples)}", t, group_traces(g)))
        else:
            stack.extend(reversed(_children(g, "traceGroup")))
    if not samples:
        raise Skip("no truth annotation")
    return samples


def convert_inkml(paths, out: str | os.PathLike, opts: InkmlOptions = InkmlOptions()) -> Report:
    """Convert InkML files to a genseq stroke file; groups are the texts."""
    report = Report()
    items = inkml_items(paths, opts.clean, report)
    return write_grouped(items, out, opts, report, source=SOURCE, units=UNITS, terms=TERMS)


def inkml_items(paths, clean: CleanOptions, report: Report) -> list:
    """(group, sample, source points, raw line) per usable trace group of the
    files, as strokes.build.write_grouped takes them; skips go to `report`."""
    items = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            raise GenseqError(f"{path}: is a folder, expected an .inkml file")
        if not path.is_file():
            raise GenseqError(f"{path}: no such file")
        try:
            found = parse_inkml(path.read_bytes(), path.stem)
        except Skip as err:
            report.skip(path.name, str(err))
            continue
        for sid, text, strokes, y_down in found:
            try:
                if not text:
                    raise Skip("empty text")
                check_text(text)
                sid = safe_id(sid)
                points = clean_strokes(strokes, clean, y_down=y_down)
            except Skip as err:
                report.skip(f"{path.name} ({sid})", str(err))
                continue
            flip = -1.0 if y_down else 1.0
            raw = RawLine(text, [np.asarray(s, dtype=np.float64).reshape(-1, 2) * [1.0, flip] for s in strokes if s])
            items.append((text.casefold(), Sample(sid, text, points), sum(len(s) for s in strokes), raw))
    return items
