"""Bringing a writer's ink to a model's size and density (genseq.strokes.normalise),
and the style measure (genseq.strokes.style)."""
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from genseq.cli import main
from genseq.strokes import StrokeDataset
from genseq.strokes.clean import to_strokes
from genseq.strokes.normalise import IAM_TARGET, InkTarget, RawLine, deskew, ink_target, line_size, normalise_lines
from genseq.strokes.style import hand_features, line_features, style_distance

TARGET = InkTarget(points_per_char=10.0, width_per_char=100.0, height=60.0)


def _pen(text: str, t: np.ndarray, size: float = 1.0, slant: float = 0.0, tilt: float = 0.0):
    """A synthetic line: one loop per character, written at times t (s), as
    (strokes (n, 2) y up, times): a pen lift every 3 characters."""
    per = 1.0  # seconds per character
    x = t / per + 0.25 * np.sin(2 * np.pi * t / per)
    y = 0.5 + 0.5 * np.cos(2 * np.pi * t / per)
    x, y = (x + slant * y) * size, y * size
    c, s = math.cos(tilt), math.sin(tilt)
    x, y = c * x - s * y, s * x + c * y
    xy = np.stack([x, y], 1)
    cut = np.searchsorted(t, np.arange(3, len(text), 3) * per)
    return np.split(xy, cut), np.split(t, cut)


def _line(text: str, rate: float, size: float, tilt: float = 0.0, jitter: float = 0.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = np.arange(0, len(text), 1 / rate)
    if jitter:
        t = np.sort(t + rng.uniform(-jitter, jitter, len(t)) / rate)
        t = t - t[0]
    strokes, times = _pen(text, t, size, tilt=tilt)
    return RawLine(text, strokes, times)


def _dense(strokes):
    """Each stroke's polyline at 20 points per segment: sizes measured on the
    line drawn, not on where its points happen to fall."""
    out = []
    for s in strokes:
        if len(s) < 2:
            out.append(s)
            continue
        u = np.linspace(0, len(s) - 1, 20 * (len(s) - 1) + 1)
        out.append(np.stack([np.interp(u, np.arange(len(s)), s[:, j]) for j in range(2)], 1))
    return out


def _measure(points: np.ndarray, text: str):
    w, h = line_size(_dense(deskew(to_strokes(points))), text)
    return w, h, len(points) / len(text)


@pytest.mark.parametrize("timed", [True, False])
def test_same_line_two_rates_and_sizes_normalise_alike(timed):
    text = "hello there world"
    a = _line(text, rate=40, size=1.0)
    b = _line(text, rate=130, size=7.5, jitter=0.3, seed=1)  # another tablet: finer, faster, uneven
    if not timed:
        a, b = RawLine(a.text, a.strokes), RawLine(b.text, b.strokes)
    (pa,), (pb,) = normalise_lines([a], TARGET), normalise_lines([b], TARGET)
    wa, ha, da = _measure(pa, text)
    wb, hb, db = _measure(pb, text)
    assert da == pytest.approx(TARGET.points_per_char, rel=0.1) and db == pytest.approx(da, rel=0.05)
    assert wa == pytest.approx(wb, rel=0.03) and ha == pytest.approx(hb, rel=0.03)
    if timed:
        # the size is the target's, measured as the target is (on points evenly timed): the
        # geometric mean of height and width per character, each over the target's, is 1
        w, h = line_size(deskew(to_strokes(pb)), text)
        assert math.sqrt(h / TARGET.height * w / TARGET.width_per_char) == pytest.approx(1.0, rel=0.05)


def test_a_narrow_hand_is_scaled_half_way_between_its_height_and_its_width():
    text = "narrow hand here"
    wide = _line(text, rate=60, size=1.0)
    narrow = RawLine(text, [s * np.array([1 / 3, 1.0]) for s in wide.strokes], wide.times)  # a third as wide
    (pw,), (pn,) = normalise_lines([wide], TARGET), normalise_lines([narrow], TARGET)
    (ww, hw, _), (wn, hn, _) = _measure(pw, text), _measure(pn, text)
    # matching the height alone would keep hn == hw; matching the width, hn == 3 hw: the mean is sqrt(3)
    assert hn / hw == pytest.approx(math.sqrt(3), rel=0.05)
    assert wn / ww == pytest.approx(1 / math.sqrt(3), rel=0.05)


def test_baseline_levelled_and_one_scale_per_writer():
    text = "level this line"
    tilted = _line(text, rate=60, size=2.0, tilt=math.radians(8))
    flat = _line(text, rate=60, size=2.0)
    (pt,), (pf,) = normalise_lines([tilted], TARGET), normalise_lines([flat], TARGET)
    st, sf = to_strokes(pt), to_strokes(pf)
    # after levelling, the tilted line's ink spans no more height than the flat one's
    assert np.ptp(np.concatenate(st)[:, 1]) == pytest.approx(np.ptp(np.concatenate(sf)[:, 1]), rel=0.05)
    # two lines of one writer, one written twice as large: one scale keeps that ratio
    small, big = _line(text, 60, 1.0), _line(text, 60, 2.0)
    ps, pb = normalise_lines([small, big], TARGET)
    assert _measure(pb, text)[0] / _measure(ps, text)[0] == pytest.approx(2.0, rel=0.03)


def test_ink_target_measures_a_stroke_file(tmp_path):
    from genseq.strokes import Sample, write_strokes
    text = "measure me"
    lines = [Sample(f"s{i}", text, p) for i, p in enumerate(normalise_lines([_line(text, 50, 1.0)] * 3, TARGET))]
    path = tmp_path / "s.h5"
    write_strokes(path, {"train": lines}, source="t", terms="t", units="u")
    with StrokeDataset(path) as ds:
        got = ink_target(ds.split("train"))
    assert got.points_per_char == pytest.approx(TARGET.points_per_char, rel=0.1)
    # normalised to the target's size: the geometric mean of height and width per character
    size = math.sqrt(got.height / TARGET.height * got.width_per_char / TARGET.width_per_char)
    assert size == pytest.approx(1.0, rel=0.05)


def _jsonl(path, lines, y_up=False):
    with open(path, "w") as fh:
        for ln in lines:
            strokes = [[[float(x), float(-y if not y_up else y), float(t)] for (x, y), t in zip(s, ts)]
                       for s, ts in zip(ln.strokes, ln.times)]
            fh.write(json.dumps({"text": ln.text, "strokes": strokes, **({"y_up": True} if y_up else {})}) + "\n")


def test_data_jsonl_normalises_to_the_bundled_model_unless_raw(tmp_path):
    texts = ["first line here", "and a second one", "third of them"]
    f = tmp_path / "me.jsonl"
    _jsonl(f, [_line(t, 120, 30.0, seed=i) for i, t in enumerate(texts)])  # screen pixels, y down, 120 Hz
    r = CliRunner().invoke(main, ["data", "jsonl", str(f), "-o", str(tmp_path / "n.h5")])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["data", "jsonl", str(f), "-o", str(tmp_path / "r.h5"), "--raw"])
    assert r.exit_code == 0, r.output
    with StrokeDataset(tmp_path / "n.h5") as n, StrokeDataset(tmp_path / "r.h5") as raw:
        assert n.units.startswith("IAM-OnDB whiteboard tablet units") and "normalised" in n.units
        assert raw.units.startswith("source units")
        pn = sum(len(s.points) for s in n.split("train")) / sum(len(t) for t in texts)
        pr = sum(len(s.points) for s in raw.split("train")) / sum(len(t) for t in texts)
    assert pn == pytest.approx(IAM_TARGET.points_per_char, rel=0.1) and pr > 3 * pn
    # thinning applies to the source's points (--raw); normalised ink has the model's density instead
    for flag in (["--every", "3"], ["--min-dist", "2"]):
        r = CliRunner().invoke(main, ["data", "jsonl", str(f), "-o", str(tmp_path / "e.h5"), *flag])
        assert r.exit_code != 0 and "work with --raw" in r.output and not (tmp_path / "e.h5").exists()
    r = CliRunner().invoke(main, ["data", "jsonl", str(f), "-o", str(tmp_path / "e.h5"), "--raw", "--every", "3"])
    assert r.exit_code == 0, r.output
    with StrokeDataset(tmp_path / "e.h5") as thin:
        pe = sum(len(s.points) for s in thin.split("train")) / sum(len(t) for t in texts)
    assert pe == pytest.approx(pr / 3, rel=0.1)


def test_style_measure_tells_slant_apart():
    text = "slanted writing"
    upright = [(normalise_lines([RawLine(text, _pen(text, np.arange(0, 15, 0.02))[0])], TARGET)[0], text)]
    leaning = [(normalise_lines([RawLine(text, _pen(text, np.arange(0, 15, 0.02), slant=0.5)[0])], TARGET)[0],
                text)]
    fu, fl = hand_features(upright), hand_features(leaning)
    assert fl["slant"] > fu["slant"] + 10
    # a 20-degree lean is nearly two typical between-writer spreads of slant (SPREAD)
    assert style_distance(fu, fu) == 0.0 and style_distance(fu, fl) > 0.7
    assert line_features(np.zeros((1, 3), np.float32), "a") is None
    with pytest.raises(TypeError, match="hand_features"):  # the lines themselves are not a hand's features
        style_distance(upright, leaning)


def test_priming_sample_joins_lines_on_one_baseline():
    from genseq.hand.api import priming_sample
    from genseq.strokes import Sample
    lines = [Sample(f"s{i}", t, p) for i, (t, p) in enumerate(
        (t, normalise_lines([_line(t, 50, 1.0, seed=i)], TARGET)[0])
        for i, t in enumerate(["a short one", "one near forty characters long, as wanted", "zzz $$"]))]
    one = priming_sample(lines, "abcdefghijklmnopqrstuvwxyz ,.", 1, 100.0)
    assert one.text == "one near forty characters long, as wanted"
    two = priming_sample(lines, "abcdefghijklmnopqrstuvwxyz ,.", 2, 100.0)
    assert two.text == "one near forty characters long, as wanted a short one"
    a, b = (np.concatenate(to_strokes(s.points)) for s in lines[1::-1][::-1][:2][::-1])
    both = np.concatenate(to_strokes(two.points))
    assert len(both) == len(a) + len(b)
    assert np.ptp(both[:, 0]) > np.ptp(a[:, 0]) + np.ptp(b[:, 0])  # side by side, a space apart


def test_priming_prefers_lines_the_reader_reads_plainly():
    from genseq.hand.api import PRIME_MAX, PRIME_PLAIN, prime_order, priming_sample
    from genseq.strokes import Sample
    texts = ["a short one", "one near forty characters long, as wanted", "a plain line of about thirty",
             "a scrawled line of thirty or so", "zzz $$",
             "a very long line, plainly written, that goes on and on past sixty characters"]
    lines = [Sample(f"s{i}", t, normalise_lines([_line(t, 50, 1.0, seed=i)], TARGET)[0]) for i, t in enumerate(texts)]
    alphabet = "abcdefghijklmnopqrstuvwxyz ,."
    read = {texts[0]: PRIME_PLAIN + 0.25, texts[1]: PRIME_PLAIN - 1.0, texts[2]: PRIME_PLAIN,
            texts[3]: PRIME_PLAIN - 2.0, texts[5]: 0.0}
    assert len(texts[5]) > PRIME_MAX
    asked = []

    def legible(pool):
        asked.append([s.text for s in pool])
        return np.array([read[s.text] for s in pool])
    by_length = [s.text for s in prime_order(lines, alphabet)]
    assert by_length == [texts[1], texts[3], texts[2], texts[0], texts[5]]  # nearest 40 first; "$" unwritable
    order = [s.text for s in prime_order(lines, alphabet, legible)]
    # Lines read plainly enough come first, by length (the thirty before the short one); then the
    # others, the more legible first; a line longer than PRIME_MAX, however plain, last.
    assert asked == [by_length[:4]]
    assert order == [texts[2], texts[0], texts[1], texts[3], texts[5]]
    assert priming_sample(lines, alphabet, 2, 100.0, legible).text == f"{texts[2]} {texts[0]}"
    # None read plainly: the most legible first.
    assert [s.text for s in prime_order(lines, alphabet, lambda pool: np.array([read[s.text] - 1 for s in pool]))
            ] == [texts[0], texts[2], texts[1], texts[3], texts[5]]
    # No preference (all -inf or NaN, as when no reader can be loaded): the order by length.
    assert [s.text for s in prime_order(lines, alphabet, lambda pool: np.full(len(pool), np.nan))] == by_length


def test_among_plain_lines_running_text_primes_first():
    # A reader that reads a line of capitals or symbols plainly must not make it the prime:
    # it primes the model into shapes that are not running text (api.prose).
    from genseq.hand.api import PRIME_PLAIN, prime_order, prose
    from genseq.strokes import Sample
    texts = ["ABCDE FGHIJ KLMNO PQRST UVWXYZ ABCDE", "over the lazy black dog", "Call 0142 at 7:45 ok", "a scrawl"]
    assert [prose(t) for t in texts] == [False, True, False, True] and not prose("") and not prose("  ")
    lines = [Sample(f"s{i}", t, normalise_lines([_line(t, 50, 1.0, seed=i)], TARGET)[0]) for i, t in enumerate(texts)]
    read = {texts[0]: 0.0, texts[1]: PRIME_PLAIN, texts[2]: -0.1, texts[3]: PRIME_PLAIN - 1}
    order = [s.text for s in prime_order(lines, "".join(sorted(set("".join(texts)))),
                                         lambda pool: np.array([read[s.text] for s in pool]))]
    # plain: running text first, then the others by length; then the lines not read plainly
    assert order == [texts[1], texts[0], texts[2], texts[3]]


def test_legibility_is_the_readers_log_likelihood_per_character():
    import torch
    from genseq.hand.choose import legibility, read_scores
    from genseq.reader.model import Recognizer, RecognizerConfig
    torch.manual_seed(0)
    reader = Recognizer(RecognizerConfig(alphabet=" abc", hidden=8, layers=1, stride=2)).eval()
    rng = np.random.default_rng(0)
    pts = [np.concatenate([rng.normal(0, 1, (n, 2)), (rng.random((n, 1)) < 0.2)], 1).astype(np.float32)
           for n in (40, 30, 30, 30)]
    texts = ["abc ab", "cab", "axe", ""]
    got = legibility(reader, pts, texts)
    whole = read_scores(reader, pts[:2], texts[:2])
    assert np.allclose(got[:2], whole / [6, 3]) and np.isfinite(got[:2]).all()
    assert got[2] == got[3] == -np.inf  # a character the reader cannot spell, an empty text


def test_style_file_primes_at_the_priming_share_of_the_models_density(tmp_path, monkeypatch):
    import genseq.hand.api as api
    texts = ["one near forty characters long, as wanted", "and a second line", "the third"]
    f = tmp_path / "me.jsonl"
    _jsonl(f, [_line(t, 120, 30.0, seed=i) for i, t in enumerate(texts)])  # 120 Hz: ~3x the model's density
    hm = api.load_hand_model(None)
    assert 0.8 <= api.PRIME_DENSITY < 1.0
    for share in (1.0, 0.8, api.PRIME_DENSITY):
        monkeypatch.setattr(api, "PRIME_DENSITY", share)
        points, text = api.load_style(hm, api.WriteOptions(style_file=f)).prime
        assert text == texts[0]
        # the writer's lines share one step of pen time, so this line is near the writer's density
        assert len(points) / len(text) == pytest.approx(share * IAM_TARGET.points_per_char, rel=0.04)


def test_an_inkml_style_file_primes_as_the_same_lines_in_json_lines(tmp_path):
    import genseq.hand.api as api
    texts = ["one near forty characters long, as wanted", "and a second line", "the third"]
    lines = [_line(t, 120, 30.0, seed=i) for i, t in enumerate(texts)]
    as_jsonl, as_inkml = tmp_path / "me.jsonl", tmp_path / "me.inkml"
    with open(as_jsonl, "w") as fh:  # no pen times: both are resampled by arc length
        for ln in lines:
            fh.write(json.dumps({"text": ln.text, "strokes": [[[float(x), float(-y)] for x, y in s]
                                                               for s in ln.strokes]}) + "\n")
    traces, groups = [], []
    for ln in lines:
        refs = []
        for s in ln.strokes:
            traces.append(f'<trace xml:id="t{len(traces)}">' + ", ".join(f"{float(x)!r} {float(-y)!r}" for x, y in s) + "</trace>")
            refs.append(f'<traceView traceDataRef="t{len(traces) - 1}"/>')
        groups.append(f'<traceGroup><annotation type="truth">{ln.text}</annotation>{"".join(refs)}</traceGroup>')
    as_inkml.write_text('<ink xmlns="http://www.w3.org/2003/InkML">' + "".join(traces) + "".join(groups) + "</ink>")
    hm = api.load_hand_model(None)
    (p_j, t_j), (p_i, t_i) = (api.load_style(hm, api.WriteOptions(style_file=f)).prime for f in (as_jsonl, as_inkml))
    assert t_j == t_i == texts[0]
    assert p_j.shape == p_i.shape and np.allclose(p_j, p_i, atol=1e-4)
