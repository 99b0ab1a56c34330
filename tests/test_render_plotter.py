"""genseq.render.plotter: SVG for pen plotters (vpype, AxiDraw/Inkscape)."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from genseq.render import PageOptions, layout, offsets_to_strokes, render_pages, render_plotter, render_svg

from strokes_fixtures import stroke_line

NS = "{http://www.w3.org/2000/svg}"
INK = "{http://www.inkscape.org/namespaces/inkscape}"


def line(sizes: list[int], x0: float = 0.0) -> np.ndarray:
    return stroke_line(sizes, x0, np.cos)


LINES = [line([10, 1, 6]), None, line([8, 12])]
OPTS = PageOptions(background="ivory", digits=3)


def start(d: str) -> tuple[float, float]:
    m = re.match(r"M(-?[\d.]+) (-?[\d.]+)", d)
    return float(m[1]), float(m[2])


def test_plain_single_stroke_paths():
    (doc,) = render_plotter(LINES, OPTS)
    root = ET.fromstring(doc)
    assert not list(root.iter(NS + "rect")) and not list(root.iter(NS + "text"))  # background ignored
    paths = list(root.iter(NS + "path"))
    assert len(paths) == sum(len(offsets_to_strokes(a)) for a in LINES) == 5
    assert all(p.get("fill") == "none" for p in paths)
    assert all(p.get("d").count("M") == 1 for p in paths)  # one pen-down per path


def test_strokes_in_writing_order():
    (doc,) = render_plotter(LINES, OPTS)
    paths = [p.get("d") for p in ET.fromstring(doc).iter(NS + "path")]
    placements, _, _ = layout(LINES, OPTS)
    expect = [placements[i].to_page(s[0]) for i, a in zip((0, 1), (LINES[0], LINES[2]))
              for s in offsets_to_strokes(a)]
    assert np.array([start(d) for d in paths]) == pytest.approx(np.array(expect), abs=1e-3)


def test_one_inkscape_layer_per_line():
    (doc,) = render_plotter(LINES, OPTS)
    assert 'xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape"' in doc
    root = ET.fromstring(doc)
    layers = [g for g in root if g.tag == NS + "g"]  # top-level groups: what vpype reads as layers
    assert [g.get(INK + "groupmode") for g in layers] == ["layer", "layer"]
    assert [g.get(INK + "label") for g in layers] == ["line 1", "line 3"]  # the blank line has no layer
    assert [g.get("id") for g in layers] == ["line-1", "line-3"]
    assert [len(list(g.iter(NS + "path"))) for g in layers] == [3, 2]
    assert all(g.get("fill") == "none" and g.get("stroke") == "black" for g in layers)


def test_size_matches_static_page():
    opts = PageOptions(width=800, height=300)
    lines = [line([5, 7])] * 6
    plot = render_plotter(lines, opts)
    static = render_pages(lines, opts)
    assert len(plot) == len(static) > 1
    for p, s in zip(plot, static):
        rp, rs = ET.fromstring(p), ET.fromstring(s)
        assert (rp.get("width"), rp.get("height"), rp.get("viewBox")) == (rs.get("width"), rs.get("height"),
                                                                          rs.get("viewBox"))
        assert float(rp.get("width")) == 800  # unitless = px, 96 per inch for vpype and Inkscape
    # Layers keep the input line's number on later pages.
    later = [g.get("id") for g in ET.fromstring(plot[1]) if g.tag == NS + "g"]
    assert later and all(int(i.split("-")[1]) > 1 for i in later)


def test_render_svg_plotter_drops_labels():
    assert render_svg(LINES, OPTS, labels=["a", "", "c"], flavour="plotter") == render_plotter(LINES, OPTS)
