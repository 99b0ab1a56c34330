"""The studio page in a real headless Chromium: write two lines and watch the
first drawn before the second is finished, download the SVG, switch styles,
see an error on the page, stream text from the Text tab, use it by keyboard."""
import re
import xml.etree.ElementTree as ET

import pytest

from chromium import needs_browser, open_studio

pytestmark = [needs_browser, pytest.mark.slow]
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def page(browser, studio_server):
    pg = open_studio(browser, studio_server.url, 60_000, accept_downloads=True)
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    pg.context.close()
    assert not errors, errors


def _numbers(d: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?[0-9.]+", d)]


def _write(pg, text, quality="fast", style=None):
    pg.fill("#text", text)
    pg.select_option("#quality", quality)
    if style is not None:
        pg.check(f"input[name=style][value='{style}']")
    pg.click("#write")
    pg.wait_for_function("window.studioLog.some(e => e[0] === 'done' || e[0] === 'error')")
    pg.click("#skip")
    pg.wait_for_function("[...document.querySelectorAll('#page path')].every(p => p.getAttribute('d'))")


def test_lines_are_drawn_as_they_come_and_the_svg_downloads(page):
    _write(page, "The first line,\nthen the second.")
    log = page.evaluate("window.studioLog")
    ink0 = next(t for what, line, t in log if what == "ink" and line == 0)
    final1 = next(t for what, line, t in log if what == "final" and line == 1)
    assert ink0 < final1, log  # line 0 on screen before line 1 is finished
    assert page.locator("#page path").count() == 2
    with page.expect_download() as dl:
        page.click("#dl-svg")
    assert dl.value.suggested_filename == "handwriting.svg"
    root = ET.parse(dl.value.path()).getroot()
    paths = root.findall(f".//{SVG}path")
    assert len(paths) == 2 and all(p.get("d") for p in paths)
    # The screen shows the download's drawing: same page size, same start of every line.
    assert page.get_attribute("#page", "viewBox").split()[3] == root.get("height")
    for shown, saved in zip(page.locator("#page path").all(), paths):
        a, b = (_numbers(d) for d in (shown.get_attribute("d"), saved.get("d")))
        assert len(a) == len(b) and max(abs(x - y) for x, y in zip(a, b)) < 0.2  # px (the stream rounds)
    for kind, magic in (("png", b"\x89PNG"), ("pdf", b"%PDF")):
        with page.expect_download() as dl:
            page.click(f"#dl-{kind}")
        assert open(dl.value.path(), "rb").read(4) == magic


def test_switching_style_changes_the_drawing(page):
    _write(page, "same words", style="0")
    first = page.get_attribute("#page path", "d")
    _write(page, "same words", style="1")
    assert page.get_attribute("#page path", "d") != first


def test_a_character_the_model_cannot_write_shows_the_error(page):
    page.fill("#text", "naïve")
    page.click("#write")
    page.wait_for_selector("#error:not([hidden])")
    assert "cannot write 1 character(s): 'ï'" in page.inner_text("#error")


def test_the_text_tab_streams_text(page):
    page.click("#tab-text")
    assert page.is_visible("#text-panel") and not page.is_visible("#write-panel")
    page.fill("#length", "200")
    page.click("#generate")
    page.wait_for_function("window.studioLog.some(e => e[0] === 'text-done')")
    log = page.evaluate("window.studioLog")
    pieces = [e for e in log if e[0] == "text"]
    assert len(pieces) > 100  # piece by piece, not one answer at the end
    assert page.inner_text("#text-out").startswith("ROMEO:")


def test_keyboard_only(page):
    # Tab to the text box, type, write with Ctrl+Enter; arrow keys switch tabs.
    page.focus("#text")
    page.keyboard.press("Control+A")
    page.keyboard.type("keys")
    page.select_option("#quality", "fast")
    page.focus("#text")
    page.keyboard.press("Control+Enter")
    page.wait_for_function("window.studioLog.some(e => e[0] === 'done')")
    page.focus("#tab-write")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.id") == "tab-text" and page.is_visible("#text-panel")


def test_the_capture_page_beside_the_studio_is_linked_and_its_lines_become_mine(browser, tmp_path):
    import threading

    from genseq.studio import StudioOptions, open_studio as open_server
    from test_studio import _screen_line
    srv = open_server(StudioOptions(capture=str(tmp_path / "mine.jsonl")))
    th = threading.Thread(target=srv.serve, daemon=True)
    th.start()
    pg = open_studio(browser, srv.url, 60_000)
    try:
        assert pg.is_hidden("#capture-hint") and pg.is_visible("#capture-link")
        with pg.context.expect_page() as new_tab:
            pg.click("#capture-link")
        tab = new_tab.value
        tab.wait_for_load_state()
        assert tab.url == srv.capture.url and "capture" in tab.title().lower()
        tab.close()
        for _ in range(2):
            prompt = srv.capture.session.state()["prompt"]
            srv.capture.session.submit(prompt["index"], prompt["text"], _screen_line(prompt["text"]))
        assert pg.input_value("#bias") == "1.5"
        pg.click("#use-recorded")
        pg.wait_for_selector("input[name=style][value='mine']:checked")
        assert pg.get_attribute("input[name=style][value='mine'] + img", "alt") == "mine: mine.jsonl"
        # the legibility slider follows the hand (your own ink: api.OWN_HAND_BIAS) until it is moved
        assert pg.input_value("#bias") == "1" and pg.text_content("#bias-out") == "1.00"
        pg.check("input[name=style][value='0']")
        assert pg.input_value("#bias") == "1.5"
        pg.fill("#bias", "2")
        pg.check("input[name=style][value='mine']")
        assert pg.input_value("#bias") == "2"
    finally:
        pg.context.close()
        srv.shutdown()
        th.join(15)
