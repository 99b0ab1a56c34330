"""genseq.render: strokes, smooth paths, page layout, SVG validity."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from genseq.errors import GenseqError
from genseq.render import PageOptions, layout, offsets_to_strokes, render_pages, save_pages, smooth_path

NS = "{http://www.w3.org/2000/svg}"
NUM = re.compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?")


def to_offsets(strokes: list[np.ndarray]) -> np.ndarray:
    rows = []
    for s in strokes:
        pen = np.zeros(len(s))
        pen[-1] = 1
        rows.append(np.column_stack([s, pen]))
    a = np.concatenate(rows)
    out = a.copy()
    out[1:, :2] = np.diff(a[:, :2], axis=0)
    return out


def wavy_line(n: int = 60, width: float = 3000.0, height: float = 200.0, x0: float = 500.0, y0: float = -80.0):
    t = np.linspace(0, 1, n)
    a = np.column_stack([x0 + width * t, y0 + height * (0.5 + 0.5 * np.sin(t * 40))])
    return to_offsets([a[: n // 2], a[n // 2:], np.array([[x0 + width / 2, y0 + 1.5 * height]])])


def parse(doc: str) -> ET.Element:
    root = ET.fromstring(doc)
    assert root.tag == NS + "svg"
    vb = [float(v) for v in re.split(r"[ ,]+", root.get("viewBox").strip())]
    assert len(vb) == 4 and all(np.isfinite(vb)) and vb[2] > 0 and vb[3] > 0
    assert float(root.get("width")) == pytest.approx(vb[2])
    assert float(root.get("height")) == pytest.approx(vb[3])
    for el in root.iter():
        for k, v in el.attrib.items():
            if k in ("d", "x", "y", "width", "height", "viewBox"):
                assert "nan" not in v.lower() and "inf" not in v.lower(), (k, v)
    return root


def paths(root: ET.Element) -> list[str]:
    return [p.get("d") for p in root.iter(NS + "path")]


def anchors(d: str) -> np.ndarray:
    """On-curve points of our path data: M points and every third C point."""
    pts = []
    for cmd, body in re.findall(r"([MCLh])([^MCLh]*)", d):
        nums = [float(v) for v in NUM.findall(body)]
        if cmd == "M":
            pts.append(nums[:2])
        elif cmd == "L":
            pts.append(nums[:2])
        elif cmd == "C":
            pts.extend(np.array(nums).reshape(-1, 6)[:, 4:6].tolist())
    return np.array(pts)


# -- offsets_to_strokes -------------------------------------------------------

def test_pen_up_splits_strokes_and_cumsums():
    pts = np.array([[1, 1, 0], [1, 0, 1], [5, 0, 0], [0, 1, 0], [0, 1, 1], [1, 1, 1]], float)
    s = offsets_to_strokes(pts)
    assert [len(x) for x in s] == [2, 3, 1]
    np.testing.assert_allclose(s[0], [[1, 1], [2, 1]])
    np.testing.assert_allclose(s[1], [[7, 1], [7, 2], [7, 3]])
    np.testing.assert_allclose(s[2], [[8, 4]])


def test_no_final_pen_up_keeps_last_stroke():
    s = offsets_to_strokes(np.array([[0, 0, 0], [1, 0, 0]], float))
    assert len(s) == 1 and len(s[0]) == 2


def test_nan_rows_dropped_without_poisoning_and_keep_lift():
    pts = np.array([[1, 0, 0], [np.nan, 0, 1], [1, 0, 0], [np.inf, 2, 0], [1, 0, 1]], float)
    s = offsets_to_strokes(pts)
    assert len(s) == 2  # the NaN row's pen lift ends the first stroke
    np.testing.assert_allclose(s[0], [[1, 0]])
    np.testing.assert_allclose(s[1], [[2, 0], [3, 0]])
    assert offsets_to_strokes(np.full((4, 3), np.nan)) == []
    assert offsets_to_strokes(None) == [] and offsets_to_strokes(np.zeros((0, 3))) == []


# -- smooth_path -------------------------------------------------------------

def test_smooth_path_passes_through_points_with_curves():
    pts = np.array([[0, 0], [10, 5], [20, 0], [30, 5]], float)
    d = smooth_path(pts)
    assert d.startswith("M0 0C") and d.count("C") == 1 and "L" not in d
    np.testing.assert_allclose(anchors(d), pts)


def test_dot_and_segment_and_duplicates():
    assert smooth_path(np.array([[3, 4]])) == "M3 4h0.01"
    assert smooth_path(np.array([[3, 4], [3, 4], [3, 4]])) == "M3 4h0.01"
    assert smooth_path(np.array([[0, 0], [1.234, 2]])) == "M0 0L1.23 2"
    assert smooth_path(np.zeros((0, 2))) == ""


def test_smooth_curve_stays_near_polyline():
    # Centripetal Catmull-Rom never overshoots wildly, even with uneven spacing.
    pts = np.array([[0, 0], [1, 0], [100, 0.5], [101, 0], [102, 40]], float)
    nums = np.array([float(v) for v in NUM.findall(smooth_path(pts))])
    xy = nums.reshape(-1, 2)
    assert xy[:, 0].min() > -5 and xy[:, 0].max() < 110 and xy[:, 1].min() > -10 and xy[:, 1].max() < 45


# -- pages -------------------------------------------------------------------

def test_valid_svg_upright_and_geometry_maps_back():
    line = wavy_line()
    opts = PageOptions(width=800, margin=20)
    [doc] = render_pages([line], opts)
    root = parse(doc)
    [placement], heights, n = layout([line], opts)
    assert n == 1
    strokes = offsets_to_strokes(line)
    data = np.concatenate(strokes)
    got = np.concatenate([anchors(d) for d in paths(root)])
    # back to data units through the inverse of the page transform
    back = np.column_stack([(got[:, 0] - placement.x0) / placement.scale,
                            (placement.y0 - got[:, 1]) / placement.scale])
    tol = 0.01 / placement.scale + 1e-9
    np.testing.assert_allclose(back.min(axis=0), data.min(axis=0), atol=tol)
    np.testing.assert_allclose(back.max(axis=0), data.max(axis=0), atol=tol)
    # fits inside the margins, left-aligned, y flipped (the dot, highest in data, is highest on the page)
    assert got[:, 0].min() == pytest.approx(20, abs=0.01)
    assert got[:, 0].max() <= 780 + 0.01
    assert got[:, 1].min() >= 0 and got[:, 1].max() <= heights[0]
    dot = placement.to_page(strokes[-1][0])
    assert dot[1] == pytest.approx(got[:, 1].min(), abs=0.01)
    assert any(d.count("M") == 3 and "h0.01" in d for d in paths(root))


def test_auto_scale_caps_text_height_and_explicit_scale():
    short = to_offsets([np.array([[0, 0], [10, 100], [20, 0]], float)])  # tall, narrow
    [p], _, _ = layout([short], PageOptions(max_text_height=30))
    assert p.scale * 90 <= 30 + 1e-6  # robust (5-95 %) height is 90 units
    [p], _, _ = layout([short], PageOptions(scale=0.5))
    assert p.scale == 0.5


def test_all_lines_share_one_scale():
    a, b = wavy_line(width=3000), wavy_line(width=1000, height=50)
    ps, _, _ = layout([a, b], PageOptions())
    assert ps[0].scale == ps[1].scale


@pytest.mark.parametrize("align", ["left", "center", "right"])
def test_alignment(align):
    opts = PageOptions(width=1000, margin=50, align=align, scale=0.1)
    [doc] = render_pages([wavy_line(width=3000)], opts)
    xs = np.concatenate([anchors(d) for d in paths(parse(doc))])[:, 0]
    lo, hi = xs.min(), xs.max()
    assert hi - lo == pytest.approx(300, abs=0.05)
    expected = {"left": 50, "center": 350, "right": 650}[align]
    assert lo == pytest.approx(expected, abs=0.05)


def test_page_flow_and_blank_lines():
    lines = [wavy_line() for _ in range(7)]
    opts = PageOptions(width=1000, margin=10, line_height=100, scale=0.1)  # line extent 30 px < pitch
    pages = render_pages(lines, PageOptions(**{**opts.__dict__, "height": 320}))
    assert len(pages) == 3  # 3 rows of 100 px fit in 300 px, so 3 + 3 + 1
    for doc in pages:
        assert float(parse(doc).get("height")) == 320
    counts = [len(paths(parse(doc))) for doc in pages]
    assert counts == [3, 3, 1]
    [one] = render_pages(lines, opts)
    assert float(parse(one).get("height")) == pytest.approx(7 * 100 + 20)
    # blank lines (None, empty, all-NaN) take a row each but draw nothing
    [doc] = render_pages([lines[0], None, np.zeros((0, 3)), np.full((3, 3), np.nan), lines[1]], opts)
    root = parse(doc)
    assert len(paths(root)) == 2 and float(root.get("height")) == pytest.approx(520)


def test_a_line_taller_than_the_page_is_refused_not_clipped():
    lines = [wavy_line(), wavy_line()]
    opts = PageOptions(width=1000, margin=10, line_height=100, scale=0.1)  # ink 30 px tall
    assert len(render_pages(lines, PageOptions(**{**opts.__dict__, "height": 51}))) == 2  # 31 px inside: fits
    with pytest.raises(GenseqError, match=r"line 1 is 30 px tall, .* page height of at least 50"):
        render_pages(lines, PageOptions(**{**opts.__dict__, "height": 45}))
    # a label takes room too
    with pytest.raises(GenseqError, match="page height of at least"):
        render_pages(lines, PageOptions(**{**opts.__dict__, "height": 51}), labels=["a", "b"])


def test_labels_colours_background():
    opts = PageOptions(color="#123456", background="ivory", stroke_width=3, label_color="gray")
    # A transcription from a stroke file made elsewhere may hold characters XML forbids: left out.
    [doc] = render_pages([wavy_line(), None], opts, labels=["hello <world> & co\x01\x1b", "blank\ufffe"])
    root = parse(doc)
    texts = [t.text for t in root.iter(NS + "text")]
    assert texts == ["hello <world> & co", "blank"]
    ink = next(g for g in root.iter(NS + "g") if g.get("class") == "ink")
    assert ink.get("stroke") == "#123456" and ink.get("stroke-width") == "3"
    assert ink.get("stroke-linecap") == "round" and ink.get("fill") == "none"
    rect = root.find(NS + "rect")
    assert rect.get("fill") == "ivory"
    # label sits under its line
    line_bottom = anchors(paths(root)[0])[:, 1].max()
    label_y = float(next(root.iter(NS + "text")).get("y"))
    assert label_y > line_bottom
    [plain] = render_pages([wavy_line()], PageOptions())
    assert parse(plain).find(NS + "rect") is None and not list(parse(plain).iter(NS + "text"))


def test_empty_input_and_bad_options():
    with pytest.raises(GenseqError):
        render_pages([], PageOptions())
    with pytest.raises(GenseqError):
        render_pages([wavy_line()], PageOptions(), labels=["a", "b"])
    with pytest.raises(GenseqError):
        PageOptions(align="justify")
    with pytest.raises(GenseqError):
        PageOptions(width=50, margin=40)
    # Huge but finite values once overflowed the page layout (found by the fuzz test).
    for kw in ({"line_spacing": 1.5e304}, {"stroke_width": float("inf")}, {"label_size": 1e300}):
        with pytest.raises(GenseqError, match="must be at most"):
            PageOptions(**kw)
    for kw in ({"color": "notacolor"}, {"color": 'red" onload="x'}, {"background": ""}, {"label_color": "#12"}):
        with pytest.raises(GenseqError, match="is not an SVG colour"):
            PageOptions(**kw)
    for ok in ("navy", "#1a2B3c", "#abc", "rgb(10, 20, 30)", "rgb(10%,20%,30%)"):
        assert PageOptions(color=ok, background=ok).color == ok
    [doc] = render_pages([None], PageOptions())  # only blank lines: one empty, valid page
    assert paths(parse(doc)) == []


def test_save_pages(tmp_path):
    one = save_pages(["<svg/>"], tmp_path / "a.svg")
    assert one == [tmp_path / "a.svg"] and one[0].read_text() == "<svg/>"
    many = save_pages(["<svg>1</svg>", "<svg>2</svg>"], tmp_path / "b.svg")
    assert [p.name for p in many] == ["b-1.svg", "b-2.svg"]
    assert many[1].read_text() == "<svg>2</svg>"
    assert not list(tmp_path.glob(".*tmp"))


def test_save_pages_writes_all_pages_or_none(tmp_path, monkeypatch):
    import errno
    old = save_pages(["<svg>old 1</svg>", "<svg>old 2</svg>"], tmp_path / "p.svg")
    real_fsync, calls = os.fsync, []

    def fails_on(n, err):
        def fsync(fd):
            calls.append(fd)
            if len(calls) == n:
                raise OSError(err, os.strerror(err))
            return real_fsync(fd)
        return fsync
    # the disk fills while page 2 is written (a sync may fail late: delayed allocation), or page 3 fails to sync
    for n, err, page in ((2, errno.ENOSPC, "p-2.svg"), (3, errno.EIO, "p-3.svg")):
        calls.clear()
        monkeypatch.setattr(os, "fsync", fails_on(n, err))
        with pytest.raises(GenseqError, match=f"while writing .*{page}|cannot write .*{page}"):
            save_pages(["<svg>new 1</svg>", "<svg>new 2</svg>", "<svg>new 3</svg>"], tmp_path / "p.svg")
        # no page replaced its old file, no page 3 appeared, no temporary file is left
        assert [p.read_text() for p in old] == ["<svg>old 1</svg>", "<svg>old 2</svg>"]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["p-1.svg", "p-2.svg"]
    monkeypatch.setattr(os, "fsync", real_fsync)
    save_pages(["<svg>new 1</svg>", "<svg>new 2</svg>", "<svg>new 3</svg>"], tmp_path / "p.svg")
    assert (tmp_path / "p-3.svg").read_text() == "<svg>new 3</svg>"


def test_render_never_imports_torch():
    code = "import sys, genseq.render, genseq.render.plots; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


rows = hnp.arrays(
    np.float64, st.tuples(st.integers(0, 40), st.just(3)),
    elements=st.one_of(st.floats(-1e6, 1e6), st.sampled_from([0.0, 1.0, np.nan, np.inf, -np.inf, 1e300])),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), rows), min_size=1, max_size=4), st.sampled_from(["left", "center", "right"]),
       st.one_of(st.none(), st.just(150.0)))
def test_random_offsets_always_give_valid_svg(lines, align, height):
    try:
        pages = render_pages(lines, PageOptions(align=align, height=height), labels=["x"] * len(lines))
    except GenseqError as err:  # a line taller than the page is refused, never clipped
        assert height is not None and "give a page height of at least" in str(err)
        return
    assert pages
    for doc in pages:
        root = parse(doc)
        for d in paths(root):
            assert all(np.isfinite(float(v)) for v in NUM.findall(d))
