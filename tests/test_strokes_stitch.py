"""Isolated characters stitched into lines (genseq.strokes.stitch) and the UNIPEN
converter's path for categories 1a-1d, on characters drawn here."""
import numpy as np
import pytest

from genseq.strokes.stitch import LETTER_GAP, WORD_GAP, in_proportion, sizing_height, stitch, stitchable


def glyph(h: float, w: float, x0: float = 5.0, y0: float = -3.0, n: int = 20) -> list[np.ndarray]:
    """A character-like shape h tall and w wide, two strokes, somewhere off the origin."""
    t = np.linspace(0, 1, n)
    return [np.stack([x0 + w * t, y0 + h * t], 1), np.stack([x0 + w * (1 - t), y0 + h * t * (1 - t)], 1)]


def _boxes(strokes, per_char):
    """Bounding boxes of consecutive characters (2 strokes each)."""
    out = []
    for k in range(0, len(strokes), per_char):
        xy = np.concatenate(strokes[k:k + per_char])
        out.append((*xy.min(0), *xy.max(0)))
    return np.array(out)  # (chars, 4): x0, y0, x1, y1


def test_stitch_places_every_character_once_left_to_right_on_the_baseline():
    chars = [(c, glyph(10.0, 6.0 + i % 3)) for i, c in enumerate("0123456789ABCDEFGHIJKLMNOP")]
    lines = stitch(chars, 10.0, np.random.default_rng(0))
    used = [i for _, _, u in lines for i in u]
    assert sorted(used) == list(range(len(chars)))  # each character once
    assert "".join(t.replace(" ", "") for t, _, _ in lines) == "".join(chars[i][0] for i in used)
    assert len(lines) > 1 and all(t == t.strip() and "  " not in t for t, _, _ in lines)
    for text, strokes, u in lines:
        box = _boxes(strokes, 2)
        assert len(box) == len(u)
        assert np.all(np.abs(box[:, 1]) <= 0.04 * 10.0 + 1e-9)  # bottoms on the baseline, give or take the wobble
        gaps = box[1:, 0] - box[:-1, 2]
        words = np.array([text[k + 1] == " " for k, ch in enumerate(text[:-1]) if ch != " "][:len(gaps)])
        assert np.all(gaps > 0)  # no two characters overlap
        assert np.all(gaps[words] >= WORD_GAP[0] * 10 - 1e-9) and np.all(gaps[~words] <= LETTER_GAP[1] * 10 + 1e-9)


def test_stitch_vertical_rules_and_what_is_left_out():
    h = 10.0
    chars = [("7", glyph(h, 5)), ("(", glyph(1.4 * h, 3)), ("'", glyph(0.3 * h, 1)), ("-", glyph(0.05 * h, 5))]
    lines = stitch(chars, h, np.random.default_rng(1))
    where = {}
    for _, strokes, used in lines:
        for k, i in enumerate(used):
            xy = np.concatenate(strokes[2 * k:2 * k + 2])
            where[chars[i][0]] = (xy[:, 1].min(), xy[:, 1].max())
    wob = 0.04 * h + 1e-9
    assert abs(where["7"][0]) <= wob  # stands on the baseline
    assert abs(where["'"][1] - h) <= wob  # hangs from the top
    assert abs(sum(where["("]) / 2 - h / 2) <= wob and where["("][0] < 0  # centred: reaches below
    assert abs(sum(where["-"]) / 2 - h / 2) <= wob
    assert [c for c in ",;gjpqy" if stitchable(c)] == [] and all(stitchable(c) for c in "0Aa#(\"")


def test_sizing_height_and_proportion():
    chars = [("1", glyph(10, 2)), ("A", glyph(12, 8)), ("B", glyph(11, 7)), ("#", glyph(40, 8)), ("a", glyph(5, 5))]
    assert sizing_height(chars) == pytest.approx(11.0)  # digits and capitals only
    assert sizing_height([("#", glyph(4, 4))]) is None
    assert in_proportion("A", glyph(12, 8), 11.0) and not in_proportion("A", glyph(800, 8), 11.0)
    assert not in_proportion("7", glyph(3, 3), 11.0) and in_proportion(".", glyph(0.5, 0.5), 11.0)
    assert in_proportion("a", glyph(5, 5), 11.0) and not in_proportion("a", glyph(1, 5), 11.0)
