"""Word spacing of written lines (genseq.hand.spacing) and the --word-gap option."""
import numpy as np
import pytest

from genseq.errors import GenseqError
from genseq.hand.spacing import stroke_words, widen_word_gaps


def _line(strokes: list[tuple[np.ndarray, int]], U: int) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (N, 3) and a one-hot window (N, U) for strokes given as (absolute (n, 2)
    pen positions, the character the window is on while it is drawn)."""
    xy = np.concatenate([s for s, _ in strokes])
    up = np.concatenate([np.r_[np.zeros(len(s) - 1), 1.0] for s, _ in strokes])
    on = np.concatenate([np.full(len(s), c) for s, c in strokes])
    points = np.c_[np.diff(xy, axis=0, prepend=[[0.0, 0.0]]), up].astype(np.float32)
    return points, np.eye(U, dtype=np.float32)[on]


def _bar(x0: float, x1: float, n: int = 5) -> np.ndarray:
    return np.c_[np.linspace(x0, x1, n), np.linspace(0.0, 1.0, n)]


def _spans(points: np.ndarray) -> list[tuple[float, float]]:
    x = np.cumsum(points[:, 0].astype(np.float64))
    ends = np.r_[np.flatnonzero(points[:, 2] > 0.5), len(points) - 1]
    starts = np.r_[0, ends[:-1] + 1]
    return [(x[s : e + 1].min(), x[s : e + 1].max()) for s, e in zip(starts, ends) if e >= s]


def test_a_narrow_gap_between_words_is_widened_and_the_strokes_keep_their_shapes():
    # "ab cd": a and b one stroke each, c and d one stroke; the gap between b and c is 0.2
    # where the line's average character width is 9.6 / 5 = 1.92.
    text = "ab cd"
    points, phi = _line([(_bar(0, 2), 0), (_bar(2.5, 4.5), 1), (_bar(4.7, 7), 3), (_bar(7.3, 9.6), 4)], len(text))
    assert stroke_words(points, phi, text).tolist() == [0, 0, 1, 1]
    out = widen_word_gaps(points, phi, text, 1.0)
    spans = _spans(out)
    pitch = 9.6 / len(text)
    assert spans[2][0] - spans[1][1] == pytest.approx(pitch, abs=1e-5)   # the gap is now one width
    assert spans[3][0] - spans[2][1] == pytest.approx(0.3, abs=1e-5)     # the letters of a word keep theirs
    np.testing.assert_allclose(spans[:2], _spans(points)[:2], atol=1e-6)  # the first word does not move
    assert out.shape == points.shape and np.array_equal(out[:, 1:], points[:, 1:])
    moved = np.flatnonzero(out[:, 0] != points[:, 0])
    assert moved.tolist() == [10]  # only the pen-up move into the second word's first stroke


def test_wide_gaps_no_gap_no_window_and_zero_leave_the_line_as_drawn():
    text = "ab cd"
    points, phi = _line([(_bar(0, 2), 0), (_bar(2.5, 4.5), 1), (_bar(7, 9), 3), (_bar(9.3, 11), 4)], len(text))
    assert widen_word_gaps(points, phi, text, 1.0) is points          # 2.5 apart: wide enough
    narrow = _line([(_bar(0, 2), 0), (_bar(2.2, 4), 3)], 4)
    assert widen_word_gaps(*narrow, "a bc", 0.0) is narrow[0]
    assert widen_word_gaps(narrow[0], None, "a bc", 1.0) is narrow[0]
    one = _line([(_bar(0, 2), 0), (_bar(2.2, 4), 1)], 2)
    assert widen_word_gaps(*one, "ab", 1.0) is one[0]                   # one word: nothing between


def test_every_later_word_moves_and_a_stroke_on_a_space_goes_with_the_word_before():
    # "a b c": the gaps a-b and b-c are both 0; a stray stroke drawn while the window is on
    # the second space follows b.
    text = "a b c"
    strokes = [(_bar(0, 1), 0), (_bar(1, 2), 2), (_bar(1.5, 1.6, 2), 3), (_bar(2, 3), 4)]
    points, phi = _line(strokes, len(text))
    assert stroke_words(points, phi, text).tolist() == [0, 1, -1, 2]
    spans = _spans(widen_word_gaps(points, phi, text, 1.0))
    pitch = 3 / len(text)
    assert spans[1][0] - spans[0][1] == pytest.approx(pitch)
    assert spans[2][0] - spans[1][0] == pytest.approx(0.5)             # the stray stroke kept its place by b
    assert spans[3][0] - spans[1][1] == pytest.approx(pitch)


@pytest.mark.parametrize("field, flag, of_style, default, too_big", [
    ("word_gap", "--word-gap", "style_word_gap", "WORD_GAP", 6),
    ("bar_check", "--bar-check", "style_bars", "BAR_CHECK", 11),
])
def test_a_bundled_hands_option_is_checked_and_is_off_in_your_hand(field, flag, of_style, default, too_big):
    # The word gap and the bar check: on by default in the bundled styles, off in a user's hand.
    from genseq.hand import api
    for bad in (too_big, -0.5):
        with pytest.raises(GenseqError, match=flag):
            api.WriteOptions(**{field: bad}).check()
    api.WriteOptions(**{field: 0}).check()
    own = api.Style(np.zeros((3, 3), np.float32), "ab", own=True)
    bundled = api.Style(np.zeros((3, 3), np.float32), "ab")
    chosen = getattr(api, of_style)
    assert chosen(api.WriteOptions(), bundled) == getattr(api, default) > 0
    assert chosen(api.WriteOptions(), own) == 0.0
    assert chosen(api.WriteOptions(**{field: 2.0}), own) == 2.0


def test_write_widens_the_bundled_hands_gaps_and_word_gap_0_keeps_them(tmp_path):
    # The bundled model at a seed whose line has gaps under 1.2 widths: the written line
    # is wider with the default, the same ink with --word-gap 0 as drawn.
    from genseq.hand import api
    from genseq.hand.spacing import widen_word_gaps as widen
    hm = api.load_hand_model()
    opts = api.WriteOptions(seed=3, candidates=1, word_gap=0.0)
    raw = api.write_handwriting("at 6 on 07700 900461", hm, opts)[1][0]
    wide = api.write_handwriting("at 6 on 07700 900461", hm, api.WriteOptions(seed=3, candidates=1))[1][0]
    np.testing.assert_array_equal(wide.points, widen(raw.points, raw.phi, raw.text, api.WORD_GAP))
    assert np.cumsum(wide.points[:, 0]).max() > np.cumsum(raw.points[:, 0]).max()


def test_the_cli_passes_word_gap_on_and_refuses_a_bad_one(tmp_path):
    from click.testing import CliRunner
    from genseq.cli import main

    def write(*extra):
        out = tmp_path / f"w{len(list(tmp_path.iterdir()))}.svg"
        r = CliRunner().invoke(main, ["write", "at 6 on 07700 900461", "-k", "1", "--seed", "3", "-o", str(out),
                                      *extra])
        assert r.exit_code == 0, r.output
        return out.read_text()
    assert write() != write("--word-gap", "0") == write("--word-gap", "0")
    r = CliRunner().invoke(main, ["write", "at 6", "--word-gap", "9", "-o", str(tmp_path / "x.svg")])
    assert r.exit_code != 0 and "--word-gap" in r.output and "Traceback" not in r.output

