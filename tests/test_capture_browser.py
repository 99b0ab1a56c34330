"""The capture page in a real headless Chromium (Debian's `chromium` package,
driven by Playwright): draw strokes with pointer events, check the JSONL file.

Skipped when Chromium or the `playwright` Python package is missing, unless
GENSEQ_REQUIRE_BROWSER=1 (CI after .ci/browser), where that is a failure.
Never runs `playwright install`: it uses the system Chromium.
"""
import json
import threading

import pytest

from chromium import needs_browser
from genseq.capture import CaptureOptions, open_capture

pytestmark = [needs_browser, pytest.mark.slow]  # a real Chromium per test
PROMPTS = ["first prompt", "second prompt", "third prompt"]


@pytest.fixture
def serve(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n", encoding="utf-8")
    running = []

    def start(out):
        srv = open_capture(out, CaptureOptions(prompts=prompts))
        th = threading.Thread(target=srv.run, daemon=True)
        th.start()
        running.append((srv, th))
        return srv

    def stop(srv):
        for s, th in running:
            if s is srv:
                s.shutdown()
                th.join(10)
        running[:] = [(s, th) for s, th in running if s is not srv]

    start.stop = stop
    yield start
    for srv, th in running:
        srv.shutdown()
        th.join(10)


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1000, "height": 700})
    pg = ctx.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    ctx.close()


def open_page(page, srv):
    page.goto(srv.url)
    page.wait_for_selector("body[data-ready='1']")
    return page.locator("#pad").bounding_box()


def draw(page, box, pts, steps=8):
    """One stroke with the mouse through `pts` (pixels from the pad's top-left)."""
    x, y = pts[0]
    page.mouse.move(box["x"] + x, box["y"] + y)
    page.mouse.down()
    for x, y in pts[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=steps)
    page.mouse.up()


def wait_status(page, text):
    page.wait_for_function("t => document.getElementById('status').textContent.includes(t)", arg=text)


def rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_draw_submit_skip_redo(page, serve, tmp_path):
    out = tmp_path / "mine.jsonl"
    srv = serve(out)
    box = open_page(page, srv)
    assert page.text_content("#prompt") == "first prompt"

    page.click("#submit")  # nothing drawn yet: refused, nothing written
    wait_status(page, "Nothing written yet")
    assert out.read_bytes() == b""

    draw(page, box, [(100, 60), (100, 180)])  # a downward line
    draw(page, box, [(150, 120), (260, 120), (260, 150)])
    draw(page, box, [(300, 50), (320, 70)])
    page.click("#undo")  # take the third stroke back, put it back, take it back again
    page.click("#redo")
    assert page.evaluate("strokes.length") == 3
    page.keyboard.press("Control+z")
    assert page.evaluate("strokes.length") == 2
    page.click("#submit")
    wait_status(page, "Saved")

    (row,) = rows(out)
    assert row["text"] == "first prompt" and len(row["strokes"]) == 2
    first, second = row["strokes"]
    assert all(len(p) == 3 for s in row["strokes"] for p in s)  # mouse: [x, y, t], no pressure
    assert len(first) >= 5 and len(second) >= 5
    assert first[0][:2] == pytest.approx([100, 60], abs=1.5)
    assert first[-1][:2] == pytest.approx([100, 180], abs=1.5)
    ys = [p[1] for p in first]
    assert ys == sorted(ys)  # drawn downwards on screen: y grows (file convention: y down)
    assert second[-1][:2] == pytest.approx([260, 150], abs=1.5)
    ts = [p[2] for s in row["strokes"] for p in s]
    assert ts[0] == 0 and ts == sorted(ts)
    assert page.text_content("#prompt") == "second prompt"
    assert page.text_content("#last-text") == "first prompt"
    assert page.evaluate("strokes.length") == 0

    page.click("#skip")
    wait_status(page, "Skipped")
    assert page.text_content("#prompt") == "third prompt" and len(rows(out)) == 1

    draw(page, box, [(50, 100), (90, 140), (130, 100)])
    page.keyboard.press("Enter")
    wait_status(page, "Saved")
    assert [r["text"] for r in rows(out)] == ["first prompt", "third prompt"]

    page.click("#redo-line")  # wrote the wrong thing: remove it and write it again
    wait_status(page, "Removed the previous line")
    assert [r["text"] for r in rows(out)] == ["first prompt"]
    assert page.text_content("#prompt") == "third prompt"
    assert page.text_content("#last-text") == "first prompt"


def test_pen_pressure(page, serve, tmp_path):
    out = tmp_path / "mine.jsonl"
    box = open_page(page, serve(out))
    cdp = page.context.new_cdp_session(page)  # trusted pen events with pressure ("force")
    pts = [(40 + 10 * i, 80 + 4 * i, 0.1 + 0.08 * i) for i in range(10)]

    def pen(kind, x, y, force, buttons):
        cdp.send("Input.dispatchMouseEvent", {"type": kind, "x": box["x"] + x, "y": box["y"] + y, "button": "left",
                                              "buttons": buttons, "clickCount": 1, "pointerType": "pen", "force": force})

    pen("mousePressed", *pts[0], 1)
    for p in pts[1:]:
        pen("mouseMoved", *p, 1)
    pen("mouseReleased", *pts[-1], 0)
    page.click("#submit")
    wait_status(page, "Saved")
    ((stroke,),) = [r["strokes"] for r in rows(out)]
    assert all(len(p) == 4 for p in stroke)
    assert [p[3] for p in stroke] == pytest.approx([f for _, _, f in pts], abs=0.01)


def test_closed_browser_and_second_session_append(browser, serve, tmp_path):
    out = tmp_path / "mine.jsonl"
    srv = serve(out)
    ctx = browser.new_context()
    pg = ctx.new_page()
    box = open_page(pg, srv)
    draw(pg, box, [(60, 60), (120, 160)])
    pg.click("#submit")
    wait_status(pg, "Saved")
    draw(pg, box, [(200, 60), (260, 160)])  # a line left unsaved when the browser closes
    ctx.close()
    saved = out.read_bytes()
    assert [r["text"] for r in rows(out)] == ["first prompt"]

    # The server stops while a page is open: the page says so and keeps the drawing.
    ctx = browser.new_context()
    pg = ctx.new_page()
    box = open_page(pg, srv)
    assert pg.text_content("#prompt") == "second prompt"
    draw(pg, box, [(60, 60), (120, 160)])
    serve.stop(srv)
    pg.click("#submit")
    wait_status(pg, "Cannot reach genseq capture")
    assert pg.evaluate("strokes.length") == 1 and out.read_bytes() == saved

    # A second capture into the same file appends and goes on with the next prompt.
    srv2 = serve(out)
    box = open_page(pg, srv2)
    assert pg.text_content("#prompt") == "second prompt"
    draw(pg, box, [(60, 60), (120, 160)])
    pg.click("#submit")
    wait_status(pg, "Saved")
    assert out.read_bytes().startswith(saved)
    assert [r["text"] for r in rows(out)] == ["first prompt", "second prompt"]
    ctx.close()
