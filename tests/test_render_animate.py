"""genseq.render.animate: self-drawing SVG pages (CSS animation, no script).

The structure tests run everywhere; the browser tests load the SVG in a real
headless Chromium (Playwright with the system `chromium`) and watch a stroke
being drawn. They are skipped when Chromium or playwright is missing, unless
GENSEQ_REQUIRE_BROWSER=1, where that is a failure.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from genseq.errors import GenseqError
from genseq.render import (POINTS_PER_SECOND, PageOptions, offsets_to_strokes, render_animated, render_pages,
                           render_svg)

from chromium import needs_browser
from strokes_fixtures import stroke_line

NS = "{http://www.w3.org/2000/svg}"


def line(sizes: list[int], x0: float = 0.0) -> np.ndarray:
    return stroke_line(sizes, x0, np.sin)


LINES = [line([10, 1, 6]), None, line([8, 12])]  # a dot, a blank line between


def timings(doc: str) -> list[tuple[float, float]]:
    root = ET.fromstring(doc)
    out = []
    for p in root.iter(NS + "path"):
        m = re.fullmatch(r"animation-delay:([\d.]+)s;animation-duration:([\d.]+)s", p.get("style"))
        out.append((float(m[1]), float(m[2])))
    return out


def test_one_path_per_stroke_in_writing_order():
    (doc,) = render_animated(LINES, labels=["first", "", "third"])
    root = ET.fromstring(doc)  # well-formed XML
    paths = list(root.iter(NS + "path"))
    strokes = [s for a in LINES for s in offsets_to_strokes(a)]
    assert len(paths) == len(strokes) == 5
    assert all(p.get("pathLength") == "1" for p in paths)
    # Each path starts where its stroke starts: x grows in writing order in LINES' first line.
    xs = [float(re.match(r"M(-?[\d.]+)", p.get("d"))[1]) for p in paths[:3]]
    assert xs == sorted(xs)
    assert paths[1].get("d").endswith("h0.01")  # the dot
    assert [t.text for t in root.iter(NS + "text")] == ["first", "third"]


def test_delays_follow_the_pen():
    (doc,) = render_animated(LINES)
    times = timings(doc)
    delays = [d for d, _ in times]
    assert delays[0] == 0 and delays == sorted(delays) and len(set(delays)) == len(delays)
    step = 1 / POINTS_PER_SECOND
    # Duration = points / rate; the next stroke starts one pen-up sample after the last point.
    assert [dur for _, dur in times] == pytest.approx([10 * step, step, 6 * step, 8 * step, 12 * step], abs=1e-3)
    assert delays[1] == pytest.approx(11 * step, abs=1e-3)
    assert delays[2] == pytest.approx(13 * step, abs=1e-3)
    # The next line waits a short pause after the last stroke is drawn.
    assert delays[3] - (delays[2] + times[2][1]) == pytest.approx(0.4, abs=1e-3)


def test_speed_scales_the_clock():
    slow, fast = timings(render_animated(LINES)[0]), timings(render_animated(LINES, speed=2)[0])
    assert [d / 2 for d, _ in slow] == pytest.approx([d for d, _ in fast], abs=1e-3)
    assert [t / 2 for _, t in slow] == pytest.approx([t for _, t in fast], abs=1e-3)
    tiny = timings(render_animated(LINES, speed=100)[0])
    assert all(dur > 0 for _, dur in tiny)  # a dot never gets a zero duration


def test_css_animation_and_reduced_motion():
    (doc,) = render_animated(LINES)
    root = ET.fromstring(doc)
    assert not list(root.iter(NS + "script"))
    (style,) = root.iter(NS + "style")
    css = re.sub(r"\s+", "", style.text)
    assert "stroke-dasharray:1;" in css and "stroke-dashoffset:1;" in css
    assert "animation-fill-mode:both" in css and "@keyframes" in css
    assert "@media(prefers-reduced-motion:reduce){path{animation:none;stroke-dasharray:none;stroke-dashoffset:0}}" in css


def test_same_page_as_static():
    opts = PageOptions(height=200, background="ivory", align="center")
    lines = [line([5, 5])] * 6
    static, animated = render_pages(lines, opts), render_animated(lines, opts)
    assert len(static) == len(animated) > 1
    for s, a in zip(static, animated):
        rs, ra = ET.fromstring(s), ET.fromstring(a)
        assert rs.attrib == ra.attrib
        assert [r.attrib for r in rs.iter(NS + "rect")] == [r.attrib for r in ra.iter(NS + "rect")]
    # Every page's clock starts at 0.
    assert all(timings(a)[0][0] == 0 for a in animated)


@pytest.mark.parametrize("speed", [0, -1, float("nan"), float("inf"), 101, "fast", None, True])
def test_bad_speed(speed):
    with pytest.raises(GenseqError, match="speed"):
        render_animated(LINES, speed=speed)


def test_render_svg_flavours():
    assert render_svg(LINES) == render_pages(LINES)
    assert render_svg(LINES, flavour="animated", speed=3) == render_animated(LINES, speed=3)
    with pytest.raises(GenseqError, match="flavour"):
        render_svg(LINES, flavour="gif")
    with pytest.raises(GenseqError, match="labels"):
        render_svg(LINES, labels=["one"], flavour="plotter")


def open_svg(browser, tmp_path, doc, reduced_motion):
    path = tmp_path / "page.svg"
    path.write_text(doc, encoding="utf-8")
    ctx = browser.new_context(reduced_motion=reduced_motion)
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    page.goto(path.as_uri())
    return ctx, page


LAST = "getComputedStyle(document.querySelector('path:last-of-type'))"


@needs_browser
def test_browser_draws_the_last_stroke_late(browser, tmp_path):
    # At speed 2 the last stroke starts about 1 s in and takes 0.12 s.
    lines = [line([40, 40]), line([12])]
    (doc,) = render_animated(lines, speed=2)
    assert timings(doc)[-1][0] == pytest.approx(1.01, abs=0.01)
    ctx, page = open_svg(browser, tmp_path, doc, "no-preference")
    try:
        page.wait_for_timeout(50)
        early = float(page.evaluate(f"{LAST}.strokeDashoffset").removesuffix("px"))
        assert early == pytest.approx(1)  # not started: hidden
        # Chromium ends the keyframes at about 1e-15, not exactly 0.
        page.wait_for_function(f"parseFloat({LAST}.strokeDashoffset) < 1e-6", timeout=10_000)
        late = float(page.evaluate(f"{LAST}.strokeDashoffset").removesuffix("px"))
        assert late == pytest.approx(0, abs=1e-6) and late != early
    finally:
        ctx.close()


@needs_browser
def test_browser_reduced_motion_shows_all_ink(browser, tmp_path):
    (doc,) = render_animated([line([40, 40]), line([12])], speed=0.01)  # minutes of animation
    ctx, page = open_svg(browser, tmp_path, doc, "reduce")
    try:
        page.wait_for_timeout(50)
        style = page.evaluate(f"[{LAST}.strokeDashoffset, {LAST}.strokeDasharray, {LAST}.animationName]")
        assert float(style[0].removesuffix("px")) == 0 or style[1] == "none"
        assert style[2] == "none"
    finally:
        ctx.close()
