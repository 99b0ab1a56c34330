"""The dot check of `write`: a line whose closing '!' or '?' lacks its dot loses to one
whose mark has it (genseq.hand.lines.dotless_end, choose.choose)."""
import numpy as np

from test_hand_spacing import _bar, _line


def _marked(dot: bool) -> tuple[np.ndarray, np.ndarray]:
    """"Hi!": an H and an i, the bar of the ! and, when `dot`, its dot."""
    strokes = [(_bar(0, 1), 0), (_bar(1.5, 2), 1), (np.c_[[3.0, 3.0, 3.0], [3.0, 2.0, 1.0]], 2)]
    if dot:
        strokes.append((np.array([[3.0, 0.0], [3.05, 0.0]]), 2))
    return _line(strokes, 3)


def test_a_closing_mark_without_its_dot_is_found():
    from genseq.hand.lines import dotless_end
    assert dotless_end(*_marked(False), "Hi!")
    assert not dotless_end(*_marked(True), "Hi!")
    points, phi = _marked(False)
    assert not dotless_end(points, phi[:, [0, 1, 0]], "Hi!")  # the bar drawn while the window was elsewhere
    assert not dotless_end(points, phi, "Hi.")


def test_choosing_prefers_the_line_whose_mark_has_its_dot(monkeypatch):
    from genseq.hand import choose as ch
    from genseq.hand.sample import HandLine
    monkeypatch.setattr(ch, "scorer", lambda *a, **k: lambda points, texts, phis: np.zeros(len(texts)))
    lines = [HandLine("Hi!", *_marked(False), "ok"), HandLine("Hi!", *_marked(True), "ok")]
    assert ch.choose(lines, 2, None)[0] is lines[0]           # a tie: the first
    assert ch.choose(lines, 2, None, dots=5.0)[0] is lines[1]
