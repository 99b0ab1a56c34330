"""A writer's slant kept apart when priming (genseq.hand.slant): the shear that
stands a line upright, a style file primed upright, written lines leant back."""
import math

import numpy as np
import pytest

from genseq.hand.sample import denormalise
from genseq.strokes.clean import to_offsets, to_strokes
from genseq.strokes.normalise import RawLine, deskew, lean, line_slant, upright_shear, writer_shear
from test_strokes_normalise import _jsonl, _pen


def _slanted(text: str, slant: float, rate: float = 40.0, seed: int = 0) -> RawLine:
    t = np.arange(0, len(text), 1 / rate)
    strokes, times = _pen(text, t, 30.0, slant=slant)
    return RawLine(text, strokes, times)


@pytest.mark.parametrize("by", [-0.3, 0.3, 0.6, 1.0])
def test_upright_shear_moves_one_for_one_with_a_shear(by):
    text = "hello world!"
    base = upright_shear(_slanted(text, 0.0).strokes)
    leant = _slanted(text, by).strokes
    assert upright_shear(leant) - base == pytest.approx(by, abs=0.01)
    assert upright_shear(deskew(leant)) - base == pytest.approx(by, abs=0.03)


def test_line_slant_reads_a_steep_hand_short_of_its_lean():
    # why the shear is found by steps: the median angle of near-vertical steps saturates
    steep = _slanted("hello world!", 1.0).strokes  # 45 degrees more than the upright line
    base = _slanted("hello world!", 0.0).strokes
    assert math.tan(math.radians(line_slant(steep))) - math.tan(math.radians(line_slant(base))) < 0.7


def test_lean_shears_offsets_and_keeps_heights_and_pen_states():
    pts = to_offsets(_slanted("abc def", 0.2).strokes)
    out = lean(pts, 0.5)
    assert np.array_equal(out[:, 1:], pts[:, 1:].astype(np.float32))
    assert np.allclose(out[:, 0], pts[:, 0] + 0.5 * pts[:, 1], atol=1e-4)
    assert upright_shear(to_strokes(out)) - upright_shear(to_strokes(pts)) == pytest.approx(0.5, abs=0.01)


def test_writer_shear_is_the_median_over_lines_and_none_without_ink():
    lines = [(to_offsets(_slanted("some words", s).strokes), "some words") for s in (0.1, 0.4, 0.5)]
    base = upright_shear(_slanted("some words", 0.0).strokes)
    assert writer_shear(lines) - base == pytest.approx(0.4, abs=0.03)
    assert writer_shear([(np.zeros((1, 3), np.float32), "ab"), (lines[0][0], "a")]) is None
    assert upright_shear([np.array([[0.0, 0.0], [5.0, 0.5], [10.0, 0.0]])]) is None  # no near-vertical step


def test_a_style_file_primes_upright_and_the_written_lines_lean_back_towards_the_writer(tmp_path):
    import genseq.hand.api as api
    from genseq.hand.slant import LEAN_BACK, UPRIGHT
    f = tmp_path / "steep.jsonl"
    texts = ["a line of a steep hand to prime with", "and a second line", "the third one"]
    _jsonl(f, [_slanted(t, 0.8, seed=i) for i, t in enumerate(texts)])  # 39 degrees past upright
    hm = api.load_hand_model(None)
    config = hm.config
    style = api.load_style(hm, api.WriteOptions(style_file=f))
    writer = upright_shear(_slanted(texts[0], 0.0).strokes) + 0.8
    up = math.tan(math.radians(UPRIGHT))
    assert 0 < LEAN_BACK <= 1 and style.shear == pytest.approx(up + LEAN_BACK * (writer - up), abs=0.05)
    prime = denormalise(style.points, config.norm_mean, config.norm_std)
    assert upright_shear(to_strokes(prime)) == pytest.approx(up, abs=0.02)
    lines, written = api.write_drawing("steep\nhand", hm, api.WriteOptions(style_file=f, candidates=2, seed=3))
    for pts in lines:
        assert upright_shear(to_strokes(pts)) == pytest.approx(style.shear, abs=0.02)
    # a bundled style has no writer's slant: its lines are as the model wrote them
    assert api.load_style(hm, api.WriteOptions(style=0)).shear is None


def test_without_upright_a_style_file_primes_as_written(tmp_path, monkeypatch):
    import genseq.hand.api as api
    import genseq.hand.slant as slant
    f = tmp_path / "steep.jsonl"
    _jsonl(f, [_slanted(t, 0.8, seed=i) for i, t in enumerate(["a steep line to prime with", "another one"])])
    hm = api.load_hand_model(None)
    upright = api.load_style(hm, api.WriteOptions(style_file=f))
    monkeypatch.setattr(slant, "UPRIGHT", None)
    as_written = api.load_style(hm, api.WriteOptions(style_file=f))
    assert as_written.shear is None and as_written.text == upright.text
    config = hm.config
    k = [upright_shear(to_strokes(denormalise(s.points, config.norm_mean, config.norm_std)))
         for s in (as_written, upright)]
    writer = upright_shear(_slanted("a steep line to prime with", 0.0).strokes) + 0.8
    assert k[0] == pytest.approx(writer, abs=0.05) and k[1] == pytest.approx(math.tan(math.radians(3.4)), abs=0.02)
