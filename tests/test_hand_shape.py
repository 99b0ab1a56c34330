"""The shape check on candidates: strokes that cross (genseq.hand.shape)."""
import numpy as np
import pytest

from genseq.errors import GenseqError
from genseq.hand.shape import crossing_penalty, crossings, shared_prefix

PLAIN = ((0.0, 0.0), (1.0, 1.0))  # offsets already in data units


def _offsets(strokes: list[list[tuple[float, float]]]) -> np.ndarray:
    """Absolute strokes -> (N, 3) offsets from (0, 0), pen-up 1 on each stroke's last point."""
    pts, up = [], []
    for s in strokes:
        pts += s
        up += [0.0] * (len(s) - 1) + [1.0]
    xy = np.asarray(pts, np.float64)
    off = np.diff(np.vstack([[0.0, 0.0], xy]), axis=0)
    return np.column_stack([off, up]).astype(np.float32)


CROSSED = [[(0, 10), (10, 0)], [(0, 0), (10, 10)]]  # an x: \ then /
BESIDE = [[(0, 10), (4, 0)], [(6, 0), (10, 10)]]  # its second stroke beside the first: \ /
LOOP = [[(0, 0), (10, 10), (10, 0), (0, 10)]]  # one stroke that crosses itself


def test_crossings_counts_pairs_of_different_strokes():
    assert crossings(_offsets(CROSSED), PLAIN) == 1
    assert crossings(_offsets(BESIDE), PLAIN) == 0
    assert crossings(_offsets(LOOP), PLAIN) == 0  # a stroke with itself is not a pair
    # two crossing segments of the same pair of strokes count once
    assert crossings(_offsets([[(0, 10), (10, 0), (0, -10)], [(0, 0), (10, 10), (10, -10)]]), PLAIN) == 1
    # only segments from `start` on: the x's first stroke left out, nothing crosses
    assert crossings(_offsets(CROSSED), PLAIN, start=2) == 0
    # the normalisation is undone first: offsets (d - mean) / std
    mean, std = np.array([3.0, -1.0]), np.array([2.0, 5.0])
    off = _offsets(CROSSED)
    off[:, :2] = (off[:, :2] - mean) / std
    assert crossings(off, (mean, std)) == 1
    assert crossings(off[:1], (mean, std)) == 0


TIPS = [[(0, 0), (5, 10.5)], [(4, 10), (10, 0)]]  # an inverted V: its strokes cross near their top ends


def test_a_pair_crossing_near_an_end_counts_in_part():
    from genseq.hand.shape import CENTRAL
    tips = crossings(_offsets(TIPS), PLAIN)
    assert 0 < tips < 0.5  # the crossing lies about 5% along each stroke from an end
    assert crossings(_offsets(TIPS), PLAIN, central=0) == 1  # the plain count
    # the same strokes crossing a share of CENTRAL or more from their ends count in full
    assert crossings(_offsets([[(0, 0), (8, 10)], [(2, 10), (10, 0)]]), PLAIN) == 1
    # where along a stroke of several segments: the whole stroke's length, not its segment's
    long_first = [[(0, 10), (6, 4), (10, 0), (20, -10), (30, -20)], [(0, 0), (10, 10)]]  # cross at (5, 5)
    share = 50 ** 0.5 / (72 ** 0.5 + 32 ** 0.5 + 2 * 200 ** 0.5)  # 7.07 of the first stroke's 42.4
    assert crossings(_offsets(long_first), PLAIN) == pytest.approx(share / CENTRAL)
    good, bad = _offsets(CROSSED), _offsets(TIPS)
    pen = crossing_penalty([good, bad], ["x", "x"], PLAIN, 1.0)
    assert pen[0] == 0 and pen[1] == pytest.approx(-(1 - tips))


def test_the_candidate_whose_x_crosses_wins_near_ties():
    a = [[(-20, 0), (-12, 0)]]  # a shared first word (a dash) and the jump to the "x": 3 points
    shift = lambda strokes: [[(x + 30, y) for x, y in s] for s in strokes]  # noqa: E731
    good, bad = _offsets(a + shift(CROSSED)), _offsets(a + shift(BESIDE))
    assert shared_prefix([good, bad]) == 3 and shared_prefix([good]) == len(good)
    pen = crossing_penalty([good, bad, good], ["- x"] * 3, PLAIN, 1.5)
    assert pen.tolist() == [0.0, -1.5, 0.0]
    # a word needs no more crossings than its letters have: a scribble gains nothing
    scribble = _offsets(a + [[(x + 1, y) for x, y in s] for s in shift(CROSSED)] + [[(28, 5), (44, 5)]])
    assert crossings(scribble, PLAIN) == 3
    assert crossing_penalty([good, scribble], ["- x", "- x"], PLAIN, 1.0).tolist() == [0.0, 0.0]
    # words without x, X, + or #, groups of one and different texts are left alone
    assert crossing_penalty([good, bad], ["- t", "- t"], PLAIN, 1.0).tolist() == [0.0, 0.0]
    assert crossing_penalty([good, bad], ["- x", "- X"], PLAIN, 1.0).tolist() == [0.0, 0.0]
    # groups are runs of equal texts: the second pair is judged on its own
    pen = crossing_penalty([good, bad, bad, good], ["- x", "- x", "x", "x"], PLAIN, 1.0)
    assert pen.tolist() == [0.0, -1.0, -1.0, 0.0]


def test_write_options_refuse_a_cross_check_out_of_range():
    from genseq.hand.api import WriteOptions
    for bad in (-1.0, 10.5, float("nan")):
        with pytest.raises(GenseqError, match="--cross-check"):
            WriteOptions(cross_check=bad).check()
    WriteOptions(cross_check=1.0).check()


def test_long_candidates_are_tested_on_their_last_segments_only():
    from genseq.hand.shape import MAX_SEGMENTS
    dash = [[(float(i), 0.0), (i + 0.5, 0.0)] for i in range(0, 2 * MAX_SEGMENTS, 1)]  # many one-segment strokes
    far = 10 * MAX_SEGMENTS
    x = [[(far, 10), (far + 10, 0)], [(far, 0), (far + 10, 10)]]
    assert crossings(_offsets(dash + x), PLAIN) == 1
    early_x = [[(-20, 10), (-10, 0)], [(-20, 0), (-10, 10)]]
    assert crossings(_offsets(early_x + dash), PLAIN) == 0  # beyond the last MAX_SEGMENTS
