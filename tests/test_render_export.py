"""PNG and PDF pages (genseq.render.raster) against the SVG pages they copy.

The ink of a PNG must land where Chromium paints the SVG from render_pages,
and where pdfium paints the PDF. Tiny synthetic lines, no model. The browser
comparison skips when Chromium or playwright is missing, unless
GENSEQ_REQUIRE_BROWSER=1, where that is a failure (as in test_capture_browser).
"""
import io
import math
import re
import struct
import sys
import zlib

import numpy as np
import pytest

from genseq.errors import GenseqError
from genseq.render.raster import render_pdf, render_png, save_pdf
from genseq.render.svg import save_pages as save_png
from genseq.render.svg import PageOptions, layout, render_pages

pytest.importorskip("matplotlib")  # the [export] extra

from chromium import needs_browser


def offsets(*strokes):
    """(N, 3) rows (dx, dy, pen_up) from strokes of absolute points (y up)."""
    pts = np.concatenate(strokes)
    rows = np.zeros((len(pts), 3))
    rows[:, :2] = np.diff(np.concatenate([[[0.0, 0.0]], pts]), axis=0)
    rows[np.cumsum([len(s) for s in strokes]) - 1, 2] = 1.0
    return rows


def sample_line(shift=0.0):
    t = np.linspace(0, 2 * np.pi, 40)
    wave = np.stack([shift + 3 * t, np.sin(2 * t)], axis=1)  # a long smooth stroke
    loop = np.stack([shift + 22 + np.cos(t), 0.2 + 1.2 * np.sin(t)], axis=1)  # a closed loop
    dot = np.array([[shift + 25.0, 1.5]])  # one point: a round dot
    bar = np.array([[shift + 26.0, -1.0], [shift + 29.0, 1.0]])  # two points: a straight line
    return offsets(wave, loop, dot, bar)


LINES = [sample_line(), None, sample_line(1.5)]
OPTIONS = PageOptions(width=600, stroke_width=3.0, background="white")


def png_size(data):
    """(width, height) from the IHDR chunk, which always comes first."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def png_rgb(data):
    """(H, W, 3) floats in [0, 1], a transparent background laid on white."""
    from matplotlib.image import imread
    img = imread(io.BytesIO(data), format="png")
    if img.shape[2] == 4:
        img = img[..., :3] * img[..., 3:] + (1 - img[..., 3:])
    return img[..., :3]


def ink(rgb):
    """(H, W) bool: dark pixels."""
    return rgb.mean(axis=2) < 0.5


def dilate(mask, r=1):
    out = mask.copy()
    h, w = mask.shape
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] |= \
                mask[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def bbox(mask):
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()])


def assert_same_ink(a, b):
    """Two ink masks agree: IoU after a 1-pixel dilation, and the bounding boxes."""
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    a, b = a[:h, :w], b[:h, :w]
    assert a.sum() > 100 and b.sum() > 100
    da, db = dilate(a), dilate(b)
    iou = (da & db).sum() / (da | db).sum()
    assert iou > 0.9, iou
    assert np.abs(bbox(a) - bbox(b)).max() <= 2, (bbox(a), bbox(b))


def test_png_pixels_per_dpi():
    (svg,) = render_pages(LINES, OPTIONS)
    height = float(re.search(r' height="([0-9.]+)"', svg).group(1))  # the SVG page's own height, px
    for dpi in (96, 192, 50):
        (png,) = render_png(LINES, OPTIONS, dpi=dpi)
        assert png_size(png) == (math.ceil(600 * dpi / 96), math.ceil(height * dpi / 96))
    assert png_size(render_png(LINES, PageOptions(width=1000, height=500))[0]) == (1000, 500)
    assert png_size(render_png(LINES, PageOptions(width=1000, height=500), dpi=192)[0]) == (2000, 1000)


def test_png_is_deterministic_and_transparent_by_default():
    a, b = render_png(LINES, labels=["one", "", "three"]), render_png(LINES, labels=["one", "", "three"])
    assert a == b
    assert b"tIME" not in a[0] and b"Software" not in a[0]  # no time stamp, no version
    from matplotlib.image import imread
    img = imread(io.BytesIO(a[0]), format="png")
    assert img.shape[2] == 4 and img[0, 0, 3] == 0 and img[..., 3].max() == 1


def test_pdf_pages_and_size():
    pdfium = pytest.importorskip("pypdfium2")
    options = PageOptions(width=600, height=150, margin=20)
    lines = [sample_line()] * 5
    data = render_pdf(lines, options, labels=[f"line {i}" for i in range(5)])
    n_svg = len(render_pages(lines, options))
    assert data.startswith(b"%PDF") and n_svg > 1
    doc = pdfium.PdfDocument(data)
    assert len(doc) == n_svg
    for i in range(len(doc)):
        assert doc[i].get_size() == pytest.approx((600 * 0.75, 150 * 0.75), abs=1e-3)
    assert render_pdf(lines, options) == render_pdf(lines, options)
    assert b"CreationDate" not in data


def test_pdf_keeps_curves_as_vectors():
    data = render_pdf([sample_line()], OPTIONS)
    assert b"/Subtype /Image" not in data  # nothing rasterised
    content = b"".join(pdf_streams(data))
    assert content.count(b" c\n") == 39 + 39  # one Bezier per segment of the wave and the loop
    assert b"1 J 1 j" in content  # round caps and joins


def pdf_streams(data):
    """The decompressed streams of a PDF (matplotlib compresses them with zlib)."""
    for m in re.finditer(rb"stream\r?\n", data):
        try:
            yield zlib.decompress(data[m.end():data.find(b"endstream", m.end())])
        except zlib.error:
            pass


def test_pdf_ink_matches_png():
    pdfium = pytest.importorskip("pypdfium2")
    for dpi in (96, 144):
        png = ink(png_rgb(render_png(LINES, OPTIONS, dpi=dpi)[0]))
        page = pdfium.PdfDocument(render_pdf(LINES, OPTIONS))[0]
        rgb = page.render(scale=dpi / 72).to_numpy()[..., :3] / 255.0
        assert abs(rgb.shape[0] - png.shape[0]) <= 1 and abs(rgb.shape[1] - png.shape[1]) <= 1
        assert_same_ink(png, ink(rgb))


def test_dot_lands_where_the_layout_puts_it():
    """Without a browser: a one-point stroke is a round dot of the pen's width
    at its page position (y flipped), in the PNG and in the PDF."""
    pdfium = pytest.importorskip("pypdfium2")
    dot, bar = np.array([[5.0, 3.0]]), np.array([[0.0, 0.0], [10.0, 0.0]])
    lines, options = [offsets(bar, dot)], PageOptions(width=400, stroke_width=8.0, scale=20)
    (place,), _, _ = layout(lines, options)
    x, y = place.to_page([5.0, 3.0])  # above the bar in the data, so higher on the page
    png = ink(png_rgb(render_png(lines, options, dpi=192)[0]))
    rgb = pdfium.PdfDocument(render_pdf(lines, options))[0].render(scale=192 / 72).to_numpy()[..., :3] / 255.0
    for mask in (png, ink(rgb)):
        cx, cy = round(2 * x), round(2 * y)
        blob = mask[cy - 12:cy + 13, cx - 12:cx + 13]  # the dot alone: the bar is 60 px lower
        assert blob[12, 12] and np.abs(bbox(blob) - [4, 4, 20, 20]).max() <= 1  # 16 px across
        assert 0.7 < blob.sum() / (np.pi * 8 ** 2) < 1.2  # a disc, not a square


def chromium_png(browser, svg, size, dpi):
    """Chromium's picture of an SVG page, `size` = (w, h) device pixels."""
    w, h = size
    ctx = browser.new_context(viewport={"width": math.ceil(w * 96 / dpi), "height": math.ceil(h * 96 / dpi)},
                              device_scale_factor=dpi / 96)
    try:
        page = ctx.new_page()
        page.set_content(f"<!doctype html><html><body style='margin:0;background:white'>{svg}</body></html>")
        return page.screenshot(clip={"x": 0, "y": 0, "width": w * 96 / dpi, "height": h * 96 / dpi})
    finally:
        ctx.close()


@needs_browser
@pytest.mark.parametrize("dpi", [96, 192])
def test_png_ink_matches_chromium_svg(browser, dpi):
    (png,) = render_png(LINES, OPTIONS, dpi=dpi)
    (svg,) = render_pages(LINES, OPTIONS)
    shot = png_rgb(chromium_png(browser, svg, png_size(png), dpi))
    mine = png_rgb(png)
    assert shot.shape == mine.shape
    assert_same_ink(ink(mine), ink(shot))


@needs_browser
@pytest.mark.parametrize("align", ["left", "center", "right"])
def test_labels_where_chromium_puts_them(browser, align):
    options = PageOptions(width=600, stroke_width=2.0, label_color="black", label_size=14, align=align)
    lines, labels = [sample_line(), sample_line()], ["Hello world", "second line"]
    (png,) = render_png(lines, options, labels=labels)
    (svg,) = render_pages(lines, options, labels=labels)
    shot, mine = png_rgb(chromium_png(browser, svg, png_size(png), 96)), png_rgb(png)
    # Compare the rows of the first label only (its line's ink lies above them).
    baseline = layout(lines, options, labels)[0][0].label_y
    rows = slice(int(baseline - 14), int(baseline + 5))
    a, b = bbox(ink(mine)[rows]), bbox(ink(shot)[rows])
    assert abs(a[1] - b[1]) <= 2 and abs(a[3] - b[3]) <= 2, (a, b)
    # matplotlib sets sans-serif in DejaVu Sans, Chromium maybe in an Arial
    # look-alike, some 15% narrower: only the anchored edge must agree.
    anchored = {"left": a[0] - b[0], "right": a[2] - b[2], "center": (a[0] + a[2] - b[0] - b[2]) / 2}[align]
    assert abs(anchored) <= 2, (a, b)
    assert abs((a[2] - a[0]) - (b[2] - b[0])) <= 0.25 * (b[2] - b[0])


def test_rgb_colour_gives_red_ink():
    options = PageOptions(width=600, stroke_width=4.0, color="rgb(255,0,0)", background="#fff")
    rgb = png_rgb(render_png(LINES, options)[0])
    red = (rgb[..., 0] > 0.9) & (rgb[..., 1] < 0.1) & (rgb[..., 2] < 0.1)
    assert red.sum() > 200
    assert (rgb[0, 0] == 1).all()  # #fff background


def test_missing_matplotlib_is_one_line(monkeypatch):
    for name in [n for n in sys.modules if n == "matplotlib" or n.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for make in (render_png, render_pdf):
        with pytest.raises(GenseqError) as err:
            make(LINES)
        assert str(err.value) == "PNG and PDF output needs matplotlib: pip install 'genseq[export]'"


def test_bad_input():
    with pytest.raises(GenseqError, match="empty"):
        render_png([])
    with pytest.raises(GenseqError, match="labels"):
        render_pdf(LINES, labels=["a"])
    with pytest.raises(GenseqError, match="dpi"):
        render_png(LINES, dpi=0)
    with pytest.raises(GenseqError, match="pixels"):
        render_png(LINES, PageOptions(width=1000, height=900_000))
    # Each side within Agg's limit, but 4.2 billion pixels (17 GB): refused before any drawing.
    with pytest.raises(GenseqError, match="150,000,000 a PNG page may have"):
        render_png(LINES, PageOptions(width=65_000, height=65_000))
    with pytest.raises(GenseqError, match="a PNG page may have"):
        render_png(LINES, PageOptions(width=1000, height=1400), dpi=1600)
    # Nothing finite to draw, or absurd offsets: still pictures, not crashes.
    absurd = np.array([[1e300, 1e300, 0], [1e300, -1e300, 1], [np.nan, 0, 1]])
    assert len(render_png([absurd, np.zeros((0, 3))])) == 1
    assert render_pdf([absurd]).startswith(b"%PDF")


def test_save_png_and_pdf(tmp_path):
    one = render_png(LINES)
    assert save_png(one, tmp_path / "page.png") == [tmp_path / "page.png"]
    assert (tmp_path / "page.png").read_bytes() == one[0]
    many = render_png([sample_line()] * 4, PageOptions(height=120, margin=10))
    assert len(many) > 1
    names = save_png(many, tmp_path / "out.png")
    assert names == [tmp_path / f"out-{i}.png" for i in range(1, len(many) + 1)]
    assert [p.read_bytes() for p in names] == many
    data = render_pdf(LINES)
    assert save_pdf(data, tmp_path / "doc.pdf") == tmp_path / "doc.pdf"
    assert (tmp_path / "doc.pdf").read_bytes() == data
    (tmp_path / "folder-2.png").mkdir()  # a folder among the names: refused before anything is written
    with pytest.raises(GenseqError, match="folder"):
        save_png(many, tmp_path / "folder.png")
    assert not (tmp_path / "folder-1.png").exists()
    with pytest.raises(GenseqError, match="folder"):
        save_pdf(data, tmp_path)
