"""The bar check of `write`: a capital E drawn without its top bar (a t), and a t crossed
only on the left of its stem, are found, and choosing prefers the candidate whose bars
are there (genseq.hand.bars, choose.choose)."""
import numpy as np
import pytest

from genseq.hand.bars import BARS, bar_arms, bar_penalty, missing_bars
from test_hand_spacing import _line

UNIT = ((0.0, 0.0), (1.0, 1.0))


def _e(top: str = "bar", at: float = 0.0, on: int = 0) -> list:
    """A capital E of height 2 whose stem stands at x = at, drawn while the window is
    on character `on`: the stem and foot in one stroke, the middle bar, and a top bar
    ("bar"), none ("none"), or one floating a whole stem's height above ("high")."""
    stem = np.c_[np.r_[np.full(9, at), np.linspace(at, at + 1, 5)[1:]], np.r_[np.linspace(2, 0, 9), np.zeros(4)]]
    strokes = [(stem, on), (np.c_[np.linspace(at, at + 0.8, 5), np.full(5, 1.0)], on)]
    if top != "none":
        y = 2.0 if top == "bar" else 4.0
        strokes.append((np.c_[np.linspace(at, at + 1.0, 5), np.full(5, y)], on))
    return strokes


def _word(top: str) -> tuple[np.ndarray, np.ndarray]:
    """"Et": the E, then a t (a stem and a bar across it, at x = 2) to its right."""
    t = [(np.c_[np.full(7, 2.0), np.linspace(2, 0, 7)], 1), (np.c_[np.linspace(1.6, 2.4, 5), np.full(5, 1.4)], 1)]
    return _line(_e(top) + t, 2)


@pytest.mark.parametrize("top, missing", [("bar", 0), ("none", 1), ("high", 1)])
def test_an_E_without_its_top_bar_is_found(top, missing):
    points, phi = _word(top)
    arms = bar_arms(points, phi, "Et", UNIT)
    assert list(arms) == [0, 1] and arms[1] >= BARS["t"].least  # the t is crossed
    assert (arms[0] >= BARS["E"].least) == (missing == 0)
    assert missing_bars(points, phi, "Et", UNIT) == missing
    on_t = np.eye(2, dtype=np.float32)[np.ones(len(points), int)]
    assert missing_bars(points, on_t, "xt", UNIT) == 0  # all drawn while the window was on the t


@pytest.mark.parametrize("bar, missing", [((1.6, 2.4), 0), ((1.5, 2.0), 1), ((1.4, 1.95), 1), (None, 1)])
def test_a_t_crossed_only_on_the_left_is_found(bar, missing):
    # "at": a t of height 3 at x = 2 (its stem drawn downwards), after an a; its bar
    # across the stem, ending at it, left of it, or none.
    a = (np.c_[np.linspace(0, 1, 5), np.r_[1, 0, 0, 1, 0]], 0)
    strokes = [a, (np.c_[np.full(7, 2.0), np.linspace(3, 0, 7)], 1)]
    if bar is not None:
        strokes.append((np.c_[np.linspace(*bar, 5), np.full(5, 1.8)], 1))
    points, phi = _line(strokes, 2)
    assert missing_bars(points, phi, "at", UNIT) == missing


def test_the_check_reads_pen_positions_in_data_units():
    points, phi = _word("bar")
    norm = ((0.0, 0.0), (2.0, 0.5))  # the same ink, normalised: x halved, y doubled
    scaled = points.copy()
    scaled[:, 0] /= 2.0
    scaled[:, 1] /= 0.5
    assert bar_arms(scaled, phi, "Et", norm) == pytest.approx(bar_arms(points, phi, "Et", UNIT))


def test_only_the_Es_drawn_since_the_candidates_parted_count():
    # Two candidates of "E E": the first E (shared by both, barless) is not theirs to
    # answer for; of their second E, one has its bar and one has none.
    first = _e("none", 0.0, 0)
    rows = [_line(first + _e(top, 3.0, 2), 3) for top in ("none", "bar")]
    points, phis = [p for p, _ in rows], [f for _, f in rows]
    assert [missing_bars(p, f, "E E", UNIT) for p, f in rows] == [2, 1]
    assert bar_penalty(points, phis, ["E E"] * 2, UNIT, 3.0).tolist() == [-3.0, 0.0]
    assert bar_penalty(points, phis, ["E E"] * 2, UNIT, 0.5).tolist() == [-0.5, 0.0]
    assert bar_penalty(points, [None, phis[1]], ["E E"] * 2, UNIT, 3.0).tolist() == [0.0, 0.0]  # no window, no check
    assert bar_penalty(points, phis, ["E E", "E F"], UNIT, 3.0).tolist() == [0.0, 0.0]  # two lines of one candidate


def test_choosing_prefers_the_candidate_whose_E_has_its_top_bar(monkeypatch):
    from genseq.hand import choose as ch
    from genseq.hand.sample import HandLine
    monkeypatch.setattr(ch, "_spelled", lambda *a, **k: np.zeros(len(a[2])))
    lines = [HandLine("Et", *_word("none"), "ok"), HandLine("Et", *_word("bar"), "ok")]
    assert ch.choose(lines, 2, None)[0] is lines[0]  # a tie: the first
    assert ch.choose(lines, 2, None, bars=3.0)[0] is lines[1]


def test_the_cli_refuses_a_bad_bar_check(tmp_path):
    from click.testing import CliRunner
    from genseq.cli import main
    r = CliRunner().invoke(main, ["write", "Elm", "--bar-check", "12", "-o", str(tmp_path / "x.svg")])
    assert r.exit_code != 0 and "--bar-check" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "x.svg").exists()


def test_write_with_the_bundled_hand_leaves_out_fewer_top_bars():
    # Three candidates of a line of E's at eight seeds: the check changes some choices,
    # and the chosen lines lack fewer top bars than without it (13 against 22 when written).
    from genseq.hand import api
    hm = api.load_hand_model()
    norm = (hm.config.norm_mean, hm.config.norm_std)
    missing = {}
    for check in (0.0, None):
        lines = [api.write_handwriting("EVE Elm Eden Ezra", hm, api.WriteOptions(seed=s, candidates=3, bar_check=check))[1][0]
                 for s in range(8)]
        missing[check] = [missing_bars(ln.points, ln.phi, ln.text, norm) for ln in lines]
    assert missing[0.0] != missing[None]
    assert sum(missing[None]) < sum(missing[0.0])
