"""W3C InkML -> genseq stroke file. The supported subset is listed in
datasets/inkml/README.md: <trace> with explicit values ("x y [more], x y ..."),
a <traceFormat> naming the X and Y channels, and text from
<annotation type="truth"> at file level or per <traceGroup>."""
from __future__ import annotations

import os
from pathlib import Path
from xml.etree.ElementTree import Element


from ..errors import GenseqError
from .build import ImportOptions, Report, write_grouped
from .xmlsafe import parse_xml
from .clean import Skip, clean_strokes
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


def parse_inkml(data: bytes, name: str) -> list[tuple[str, str, list, bool]]:
    """-> [(id, text, strokes, y_down)] per annotated group (or the whole file)."""
    root = parse_xml(data)
    if _local(root.tag) != "ink":
        raise Skip("not InkML (root is not <ink>)")
    xcol, ycol, y_down = _channels(root)
    traces = {}
    order = []
    for el in root.iter():
        if _local(el.tag) == "trace":
            pts = _trace_points(el, xcol, ycol)
            order.append(pts)
            if el.get("id") or el.get(_XML_ID):
                traces[el.get(_XML_ID) or el.get("id")] = pts

    def group_strokes(g: Element) -> list:
        out = []
        for el in g.iter():
            tag = _local(el.tag)
            if tag == "trace":
                out.append(_trace_points(el, xcol, ycol))
            elif tag == "traceView" and el.get("traceDataRef") in traces:
                out.append(traces[el.get("traceDataRef")])
        return out

    text = _truth(root)
    if text is not None:
        return [(name, text, order, y_down)]
    samples = []

    def walk(el: Element) -> None:
        for g in _children(el, "traceGroup"):
            t = _truth(g)
            if t is not None:
                samples.append((f"{name}:{len(samples)}", t, group_strokes(g), y_down))
            else:
                walk(g)

    walk(root)
    if not samples:
        raise Skip("no truth annotation")
    return samples


def convert_inkml(paths, out: str | os.PathLike, opts: InkmlOptions = InkmlOptions()) -> Report:
    """Convert InkML files to a genseq stroke file; groups are the texts."""
    report = Report()
    items = []
    for path in paths:
        path = Path(path)
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
                points = clean_strokes(strokes, opts.clean, y_down=y_down)
            except Skip as err:
                report.skip(f"{path.name} ({sid})", str(err))
                continue
            items.append((text.casefold(), Sample(sid, text, points), sum(len(s) for s in strokes)))
    return write_grouped(items, out, opts, report, source=SOURCE, units=UNITS, terms=TERMS)
