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
    from genseq.hand.slant import LEAN_BACK
    from genseq.strokes.normalise import UPRIGHT
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


def test_as_written_a_style_file_primes_with_its_slant_and_the_lines_keep_theirs(tmp_path):
    import genseq.hand.api as api
    f = tmp_path / "steep.jsonl"
    _jsonl(f, [_slanted(t, 0.8, seed=i) for i, t in enumerate(["a steep line to prime with", "another one"])])
    hm = api.load_hand_model(None)
    upright = api.load_style(hm, api.WriteOptions(style_file=f))
    as_written = api.load_style(hm, api.WriteOptions(style_file=f, upright=False))
    assert as_written.shear is None and as_written.text == upright.text
    config = hm.config
    k = [upright_shear(to_strokes(denormalise(s.points, config.norm_mean, config.norm_std)))
         for s in (as_written, upright)]
    writer = upright_shear(_slanted("a steep line to prime with", 0.0).strokes) + 0.8
    assert k[0] == pytest.approx(writer, abs=0.05) and k[1] == pytest.approx(math.tan(math.radians(3.4)), abs=0.02)


@pytest.mark.parametrize("by", [-1.73, 1.9])
def test_upright_shear_finds_hands_steeper_than_45_degrees(by):
    # the steps settle from 0 where almost none are near-vertical: searched again from the most vertical shear
    base = upright_shear(_slanted("hello world!", 0.0).strokes)
    assert upright_shear(_slanted("hello world!", by).strokes) - base == pytest.approx(by, abs=0.01)


def test_upright_shear_refuses_scribble_and_hands_past_the_largest_shear():
    rng = np.random.default_rng(0)
    flat = np.cumsum(np.stack([rng.uniform(1, 3, 400), rng.normal(0, 0.2, 400)], 1), 0)  # a flat zigzag
    assert upright_shear([flat]) is None
    assert upright_shear(_slanted("hello world!", 2.6).strokes) is None  # 69 degrees: not a slant to stand up


def test_a_left_leaning_writer_primes_upright_and_the_lines_lean_back_left(tmp_path):
    import genseq.hand.api as api
    from genseq.hand.slant import LEAN_BACK
    from genseq.strokes.normalise import UPRIGHT
    f = tmp_path / "left.jsonl"
    texts = ["a hand that leans to the left a lot", "and a second line", "the third one"]
    _jsonl(f, [_slanted(t, -0.5, seed=i) for i, t in enumerate(texts)])
    hm = api.load_hand_model(None)
    style = api.load_style(hm, api.WriteOptions(style_file=f))
    writer = upright_shear(_slanted(texts[0], 0.0).strokes) - 0.5
    up = math.tan(math.radians(UPRIGHT))
    assert style.shear == pytest.approx(up + LEAN_BACK * (writer - up), abs=0.05) and style.shear < 0
    lines, _ = api.write_drawing("leaning left", hm, api.WriteOptions(style_file=f, candidates=2, seed=1))
    assert upright_shear(to_strokes(lines[0])) == pytest.approx(style.shear, abs=0.02)


def test_a_written_line_too_short_to_measure_is_leant_by_the_fixed_amount():
    from genseq.hand.slant import lean_to
    from genseq.strokes.normalise import UPRIGHT
    up = math.tan(math.radians(UPRIGHT))
    dash = to_offsets([np.array([[0.0, 0.0], [40.0, 1.0], [80.0, 0.0]])])  # "-": no near-vertical step
    assert np.allclose(lean_to(dash, 0.6), lean(dash, 0.6 - up))
    short = to_offsets(_slanted("hi", 1.2, rate=6).strokes[:1])  # a few near-vertical steps: not enough to go by
    assert np.allclose(lean_to(short, 0.6), lean(short, 0.6 - up))
    near = to_offsets(_slanted("hello world!", 0.1).strokes)
    own = upright_shear(to_strokes(near))
    assert np.allclose(lean_to(near, 0.6), lean(near, 0.6 - own))


def test_a_style_file_with_no_slant_to_measure_primes_as_written(tmp_path):
    import json
    import genseq.hand.api as api
    f = tmp_path / "dots.jsonl"
    dots = [[[float(10 * i), 50.0]] for i in range(30)]  # one-point strokes: no pen-down step at all
    f.write_text("".join(json.dumps({"text": t, "strokes": dots}) + "\n" for t in ("dot dot dot", "more dots")))
    hm = api.load_hand_model(None)
    style = api.load_style(hm, api.WriteOptions(style_file=f))
    assert style.shear is None
    lines, _ = api.write_drawing("dots", hm, api.WriteOptions(style_file=f, candidates=1, seed=1))
    assert lines[0] is not None and np.isfinite(lines[0]).all()


def test_write_as_written_needs_a_style_file(tmp_path):
    from click.testing import CliRunner
    from genseq.cli import main
    r = CliRunner().invoke(main, ["write", "hi", "--as-written", "-o", str(tmp_path / "o.svg")])
    assert r.exit_code != 0 and "--as-written works with --style-file" in r.output
    assert not (tmp_path / "o.svg").exists()


TUNE_TEXTS = ["abc cab", "cab a bc", "b.c aa", "aa bb c", "c a b ab", "abc. ba", "ba ca cc", "cc a bb"]


def _steep_file(tmp_path, slant=0.8):
    f = tmp_path / "steep.jsonl"
    _jsonl(f, [_slanted(t, slant, seed=i) for i, t in enumerate(TUNE_TEXTS)])
    return f, upright_shear(_slanted(TUNE_TEXTS[0], 0.0).strokes) + slant


def test_a_fine_tune_learns_the_lines_upright_and_its_lines_lean_back_to_the_writer(tmp_path):
    from click.testing import CliRunner

    from genseq.checkpoint import load_checkpoint
    from genseq.cli import main
    from genseq.hand.api import WriteOptions, load_hand_model, load_style, write_drawing
    from genseq.hand.slant import lean_back
    from genseq.strokes.normalise import UPRIGHT
    from genseq.strokes import StrokeDataset
    from test_hand_own import _base_model
    base = _base_model(tmp_path)
    f, writer = _steep_file(tmp_path)  # 39 degrees past upright
    run = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", "handwriting", str(f), "--init", str(base), "-o", str(run),
                                  "--max-steps", "2", "-q"])
    assert r.exit_code == 0, r.output
    up = math.tan(math.radians(UPRIGHT))
    from genseq.strokes.normalise import model_ink
    from genseq.strokes.ownink import read_ink
    as_written = read_ink(f, target=model_ink(load_checkpoint(base, kind="handwriting")["meta"]))
    writer = writer_shear([(s.points, s.text) for s in as_written])  # in the base model's ink
    assert writer > 0.6
    with StrokeDataset(run / "steep.h5") as ds:
        assert ds.writer_shear == pytest.approx(writer, abs=1e-6)  # the slant the lines were stood up from
        lines = [(s.points, s.text) for name in ("train", "val") for s in ds.split(name)]
        assert "sheared from a slant of" in ds.resample
    assert writer_shear(lines) == pytest.approx(up, abs=0.02)  # learnt upright
    meta = load_checkpoint(run / "best.pt", kind="handwriting")["meta"]
    assert meta["writer_shear"] == pytest.approx(writer, abs=1e-6)
    # the carried lines (normalised from the file again, sparser) are leant by the same shear
    from dataclasses import replace

    from genseq.hand.own import STYLE_DENSITY
    target = model_ink(meta)
    sparser = {s.text: s.points for s in read_ink(f, target=replace(
        target, points_per_char=target.points_per_char * STYLE_DENSITY))}
    assert meta["styles"]
    for st in meta["styles"]:
        assert np.allclose(st["points"], lean(sparser[st["text"]], up - writer), atol=0.006)
    hm = load_hand_model(run / "best.pt")
    assert load_style(hm, WriteOptions()).shear == pytest.approx(lean_back(meta["writer_shear"]))
    assert load_style(hm, WriteOptions(style_file=f)).shear == pytest.approx(lean_back(writer), abs=0.05)
    assert load_style(hm, WriteOptions(style=1)).shear == pytest.approx(lean_back(meta["writer_shear"]))
    # ... and the lines it writes are the same draws leant back to that shear
    from dataclasses import replace

    from genseq.hand.slant import lean_to
    leant, _ = write_drawing("ab ca", hm, WriteOptions(candidates=1, seed=0))
    plain = replace(hm, meta={k: v for k, v in hm.meta.items() if k != "writer_shear"})
    as_drawn, _ = write_drawing("ab ca", plain, WriteOptions(candidates=1, seed=0))
    k_back = lean_back(meta["writer_shear"])
    assert len(leant) == len(as_drawn) >= 1
    assert all(np.allclose(a, lean_to(b, k_back), atol=1e-3) for a, b in zip(leant, as_drawn))
    assert not all(np.allclose(a, b) for a, b in zip(leant, as_drawn))
    # a resumed run reuses the converted lines and keeps the slant; --as-written cannot change it
    r = CliRunner().invoke(main, ["train", "handwriting", str(f), "--init", str(base), "-o", str(run),
                                  "--max-steps", "3", "-q", "--resume"])
    assert r.exit_code == 0, r.output
    assert load_checkpoint(run / "last.pt", kind="handwriting")["meta"]["writer_shear"] == meta["writer_shear"]
    r = CliRunner().invoke(main, ["train", "handwriting", str(f), "--init", str(base), "-o", str(run),
                                  "--max-steps", "4", "-q", "--resume", "--as-written"])
    assert r.exit_code != 0 and "resume it without --as-written" in r.output and "Traceback" not in r.output
    # --as-written: the lines learnt as they are, no slant recorded, nothing leant
    r = CliRunner().invoke(main, ["train", "handwriting", str(f), "--init", str(base), "-o", str(tmp_path / "aw"),
                                  "--max-steps", "2", "-q", "--as-written"])
    assert r.exit_code == 0, r.output
    with StrokeDataset(tmp_path / "aw" / "steep.h5") as ds:
        assert ds.writer_shear is None
        assert writer_shear([(s.points, s.text) for n in ("train", "val") for s in ds.split(n)]) == \
            pytest.approx(writer, abs=1e-3)
    aw = load_hand_model(tmp_path / "aw" / "best.pt")
    assert "writer_shear" not in aw.meta and load_style(aw, WriteOptions()).shear is None
    r = CliRunner().invoke(main, ["train", "handwriting", str(run / "steep.h5"), "-o", str(tmp_path / "x"),
                                  "--as-written", "-q"])
    assert r.exit_code != 0 and "--as-written is for your own" in r.output and "Traceback" not in r.output


def test_data_jsonl_upright_records_the_slant_and_refuses_raw(tmp_path):
    from click.testing import CliRunner

    from genseq.cli import main
    from genseq.strokes.normalise import UPRIGHT
    from genseq.strokes import StrokeDataset
    from genseq.strokes.normalise import IAM_TARGET
    from genseq.strokes.ownink import read_ink
    f, _ = _steep_file(tmp_path, slant=0.5)
    writer = writer_shear([(s.points, s.text) for s in read_ink(f, target=IAM_TARGET)])  # the bundled model's ink
    assert writer > 0.3
    r = CliRunner().invoke(main, ["data", "jsonl", str(f), "-o", str(tmp_path / "up.h5"), "--upright"])
    assert r.exit_code == 0, r.output
    assert "slant: " in r.output and "stood upright to 3.4" in r.output
    with StrokeDataset(tmp_path / "up.h5") as ds:
        assert ds.writer_shear == pytest.approx(writer, abs=1e-6)
        lines = [(s.points, s.text) for name in ("train", "val") for s in ds.split(name)]
    assert writer_shear(lines) == pytest.approx(math.tan(math.radians(UPRIGHT)), abs=0.02)
    r = CliRunner().invoke(main, ["data", "jsonl", str(f), "-o", str(tmp_path / "w.h5")])
    with StrokeDataset(tmp_path / "w.h5") as ds:  # without it: as written, no slant recorded
        assert ds.writer_shear is None
        lines = [(s.points, s.text) for name in ("train", "val") for s in ds.split(name)]
        assert writer_shear(lines) == pytest.approx(writer, abs=1e-3)
    r = CliRunner().invoke(main, ["data", "jsonl", str(f), "-o", str(tmp_path / "r.h5"), "--upright", "--raw"])
    assert r.exit_code != 0 and "--upright" in r.output and "Traceback" not in r.output


def test_a_model_or_file_with_a_bad_writer_shear_is_refused_or_ignored(tmp_path):
    import h5py

    from genseq.errors import GenseqError
    from genseq.hand.slant import model_lean
    from genseq.strokes import Sample, StrokeDataset, write_strokes
    for bad in (float("nan"), True, "0.3", 9.0, None, [0.1], 10**400, -(10**400)):
        assert model_lean({"writer_shear": bad}) is None
    assert model_lean({}) is None and model_lean({"writer_shear": 0.5}) is not None
    p = tmp_path / "s.h5"
    pts = np.array([[0, 0, 0], [1, 1, 1]], np.float32)
    write_strokes(p, {"train": [Sample("a", "ab", pts)]}, source="t", terms="t", units="u")
    for bad in (np.nan, np.inf, 3.0, -1e308, np.uint64(2**64 - 1), "0.3", b"0.3", np.array([0.1, 0.2]), True):
        with h5py.File(p, "a") as fh:
            fh.attrs["writer_shear"] = bad
        with pytest.raises(GenseqError, match="writer_shear"):
            StrokeDataset(p)
    with h5py.File(p, "a") as fh:
        fh.attrs["writer_shear"] = 0.25
    with StrokeDataset(p) as ds:
        assert ds.writer_shear == 0.25


def test_a_bad_writer_shear_in_a_model_file_writes_the_lines_as_they_come(tmp_path):
    """A model file is data: a slant that is not a number within range is ignored, never a traceback."""
    import torch
    from click.testing import CliRunner

    from genseq.cli import main
    from genseq.checkpoint import bundled_path
    from genseq.hand.api import DEFAULT_MODEL
    ck = torch.load(bundled_path(DEFAULT_MODEL), weights_only=True)
    ck["meta"]["writer_shear"] = 10**400
    bad = tmp_path / "bad.pt"
    torch.save(ck, bad)
    r = CliRunner().invoke(main, ["write", "hi", "--model", str(bad), "-o", str(tmp_path / "hi.svg"),
                                  "--candidates", "1"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "hi.svg").exists()


def test_a_fine_tune_on_an_upright_stroke_file_leans_its_lines_back(tmp_path):
    from click.testing import CliRunner

    from genseq.checkpoint import load_checkpoint
    from genseq.cli import main
    from genseq.hand.api import WriteOptions, load_hand_model, load_style
    from genseq.hand.slant import lean_back
    from test_hand_own import _base_model
    base = _base_model(tmp_path)
    f, _ = _steep_file(tmp_path)
    r = CliRunner().invoke(main, ["data", "jsonl", str(f), "-o", str(tmp_path / "up.h5"), "--upright",
                                  "--like", str(base), "--val-frac", "0.3"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["train", "handwriting", str(tmp_path / "up.h5"), "--init", str(base), "-o",
                                  str(tmp_path / "run"), "--max-steps", "2", "--eval-every", "2", "-q"])
    assert r.exit_code == 0, r.output
    from genseq.strokes import StrokeDataset
    with StrokeDataset(tmp_path / "up.h5") as ds:
        k = ds.writer_shear
    assert k is not None and load_checkpoint(tmp_path / "run" / "best.pt", kind="handwriting")["meta"]["writer_shear"] == k
    # it carries no lines of its own: primed with a bundled style, its lines lean back all the same
    from dataclasses import replace
    bundled = load_hand_model(None)
    tuned = replace(bundled, meta={**bundled.meta, "writer_shear": k})
    assert load_style(tuned, WriteOptions(style=0)).shear == pytest.approx(lean_back(k))
    assert load_style(bundled, WriteOptions(style=0)).shear is None
