"""Fine-tuning on your own handwriting straight from JSONL (genseq.hand.own)."""
import json

import numpy as np
import torch
from click.testing import CliRunner

from genseq.checkpoint import load_checkpoint
from genseq.cli import main
from genseq.hand.own import SMALL_SET
from genseq.strokes import Sample, StrokeDataset, write_strokes

TEXTS = ["abc", "cab a", "b.c", "aa bb", "c a b", "abc.", "ba ca", "cc a", "a b c", "bb.a"]


def _loops(text: str, rng, scale: float = 1.0):
    """Absolute strokes of fake handwriting: one loop per character, a stroke per word."""
    strokes, x = [], 0.0
    for word in text.split(" "):
        pts = []
        for ch in word:
            t = np.linspace(0, 2 * np.pi, 12)
            r = 20 + 5 * "abc .".index(ch)
            pts += list(zip(x + 30 + np.cos(t) * r + rng.normal(0, 1, 12), np.sin(t) * r + rng.normal(0, 1, 12)))
            x += 60
        strokes.append([[p[0] * scale, p[1] * scale] for p in pts])
        x += 40
    return strokes


def converted_line(run, text):
    with StrokeDataset(run / "mine.h5") as ds:
        return next([[round(float(v), 2) for v in row] for row in s.points] for s in ds.split("train") if s.text == text)


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _base_model(tmp_path):
    rng = np.random.default_rng(0)
    from genseq.strokes.clean import to_offsets

    def sample(i, t):
        return Sample(f"s{i}", t, to_offsets([np.asarray(s) for s in _loops(t, rng)]))
    splits = {s: [sample(i, t) for i, t in enumerate(TEXTS[:6])] for s in ("train", "val")}
    data = tmp_path / "base.h5"
    write_strokes(data, splits, source="test", terms="none", units="px")
    run = tmp_path / "base"
    r = _invoke("train", "handwriting", data, "-o", run, "--hidden", 8, "--layers", 1, "--mixtures", 2,
                "--window", 2, "--batch", 3, "--max-steps", 2, "--eval-every", 2, "-q")
    assert r.exit_code == 0, r.output
    return run / "best.pt"


def test_train_on_jsonl_converts_holds_out_and_uses_the_small_set_recipe(tmp_path):
    base = _base_model(tmp_path)
    rng = np.random.default_rng(1)
    mine = tmp_path / "mine.jsonl"
    with open(mine, "w") as fh:  # screen pixels, y down, 3x the base's size
        for t in TEXTS:
            strokes = [[[x, -y] for x, y in s] for s in _loops(t, rng, scale=3.0)]
            fh.write(json.dumps({"text": t, "strokes": strokes}) + "\n")
    run = tmp_path / "mine"
    r = _invoke("train", "handwriting", mine, "--init", base, "-o", run, "--max-steps", 3, "-q")
    assert r.exit_code == 0, r.output
    assert f"{run / 'best.pt'} writes in your hand, primed with your line " in r.output  # and says how to use it
    ink = load_checkpoint(base, kind="handwriting")["meta"]["ink"]  # measured on its data when it was trained
    with StrokeDataset(run / "mine.h5") as ds:
        assert len(ds.split("val")) >= SMALL_SET.min_val and len(ds.split("train")) >= 3
        assert ds.units.startswith("px (the writer's ink normalised")  # the base model's units and ink
        pts = sum(len(s.points) for name in ("train", "val") for s in ds.split(name))
        chars = sum(len(t) for name in ("train", "val") for t in ds.split(name).texts)
    assert abs(pts / chars / ink["points_per_char"] - 1) < 0.15
    ck = load_checkpoint(run / "last.pt", kind="handwriting")
    assert ck["meta"]["ink"] == ink  # a fine-tune writes the ink of the model it started from
    opts = ck["train"]["options"]
    assert opts["lr"] == str(SMALL_SET.lr) and opts["max_steps"] == "3" and opts["precision"] == SMALL_SET.precision
    assert ck["train"]["task"]["batch"] == SMALL_SET.batch and ck["meta"]["augment"] == SMALL_SET.augment
    assert ck["meta"]["init"] is True
    # The model carries a few of the writer's training lines: its default style.
    from genseq.hand.own import STYLE_LINES
    from genseq.hand.api import WriteOptions, load_hand_model, load_style, model_styles
    with StrokeDataset(run / "mine.h5") as ds:
        train_texts = set(ds.split("train").texts)
    styles = ck["meta"]["styles"]
    assert 1 <= len(styles) <= STYLE_LINES and {st["text"] for st in styles} <= train_texts
    # ... normalised from mine.jsonl again, a little sparser than the converted lines (STYLE_DENSITY)
    from genseq.hand.own import STYLE_DENSITY
    with StrokeDataset(run / "mine.h5") as ds:
        converted = {s.text: len(s.points) for s in ds.split("train")}
    ratio = sum(len(st["points"]) for st in styles) / sum(converted[st["text"]] for st in styles)
    assert abs(ratio - STYLE_DENSITY) < 0.04, ratio
    hm = load_hand_model(run / "last.pt")
    assert [s.text for s in model_styles(hm)] == [st["text"] for st in styles]
    # They are the lines the reader reads plainly first (api.prime_order), here the one a stand-in reader likes.
    from genseq.hand.model import HandwritingConfig
    from genseq.hand.own import own_styles
    from genseq.strokes.normalise import model_ink
    liked = sorted(train_texts)[-1]
    chosen = own_styles(run / "mine.h5", HandwritingConfig.from_dict(ck["config"]),
                        legible=lambda pool: np.array([0.0 if s.text == liked else -5.0 for s in pool]))
    assert chosen[0]["text"] == liked and len(chosen) == len(styles)
    assert [st["points"] for st in chosen] == [converted_line(run, st["text"]) for st in chosen]  # no source: as converted
    again = own_styles(run / "mine.h5", HandwritingConfig.from_dict(ck["config"]), source=mine,
                       target=model_ink(ck["meta"]))
    assert again == styles  # what the run carries
    gone = own_styles(run / "mine.h5", HandwritingConfig.from_dict(ck["config"]), source=tmp_path / "moved.jsonl",
                      target=model_ink(ck["meta"]))
    assert {st["text"] for st in gone} <= train_texts and len(gone) == len(styles)  # without it: as converted
    # the first is the default whatever the seed; --style picks the others
    assert all(load_style(hm, WriteOptions(seed=s)).text == styles[0]["text"] for s in range(4))
    assert load_style(hm, WriteOptions(style=len(styles) - 1)).text == styles[-1]["text"]
    assert "styles" not in load_checkpoint(base, kind="handwriting")["meta"]  # a run on a corpus carries none
    # resuming reuses the converted file and carries the same lines, whatever became of the source since
    mine.write_text("\n".join(json.dumps({"text": t, "strokes": _loops(t, rng, scale=5.0)}) for t in TEXTS) + "\n")
    r = _invoke("train", "handwriting", mine, "--init", base, "-o", run, "--max-steps", 4, "-q", "--resume")
    assert r.exit_code == 0, r.output
    ck = load_checkpoint(run / "last.pt", kind="handwriting")
    assert ck["train"]["step"] == 4 and ck["meta"]["styles"] == styles


def test_too_few_lines_to_hold_any_out_is_one_line(tmp_path):
    base = _base_model(tmp_path)
    mine = tmp_path / "few.jsonl"
    rng = np.random.default_rng(2)
    mine.write_text("".join(json.dumps({"text": t, "strokes": _loops(t, rng)}) + "\n" for t in TEXTS[:3]))
    r = _invoke("train", "handwriting", mine, "--init", base, "-o", tmp_path / "few", "-q")
    assert r.exit_code != 0 and "fine-tuning needs at least 6" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "few").exists()  # no empty run folder left behind


def test_malformed_model_styles_are_ignored():
    from genseq.hand.api import HandModel, model_styles
    good = {"text": "ab", "points": [[0, 0, 0], [1, 1, 1]]}
    dense = {"text": "a", "points": [[0.0, 0.0, 1.0]] * 41}  # priming runs over every point: 41 for one letter
    far = {"text": "ab", "points": [[0, 0, 0], [1e30, 1, 1]]}  # finite, but no pen step of a line
    for styles in ([good], [{"text": "ab", "points": [[0, 0]]}], [{"text": 3, "points": []}], "x",
                   [good] * 9, [{"text": "ab", "points": [[float("nan"), 0, 0], [1, 1, 1]]}], [dense], [far]):
        got = model_styles(HandModel(None, {"styles": styles}))
        assert len(got) == (1 if styles == [good] else 0)
    assert len(model_styles(HandModel(None, {"styles": [{**dense, "points": dense["points"][:40]}]}))) == 1


def _mine(tmp_path, name="mine.jsonl", seed=1):
    rng = np.random.default_rng(seed)
    mine = tmp_path / name
    mine.write_text("".join(json.dumps({"text": t, "strokes": _loops(t, rng)}) + "\n" for t in TEXTS))
    return mine


def test_best_keeps_the_tuned_weights_blended_back_towards_the_start(tmp_path):
    base = _base_model(tmp_path)
    mine = _mine(tmp_path)
    start = load_checkpoint(base, kind="handwriting")["model"]
    for blend, flags in ((SMALL_SET.blend, []), (1.0, ["--blend", 1])):
        run = tmp_path / f"mine-{blend}"
        r = _invoke("train", "handwriting", mine, "--init", base, "-o", run, "--max-steps", 2,
                    "--eval-every", 2, "-q", *flags)
        assert r.exit_code == 0, r.output
        best, last = (load_checkpoint(run / f, kind="handwriting") for f in ("best.pt", "last.pt"))
        assert best["meta"]["step"] == last["train"]["step"] == 2  # one evaluation: best is the last step
        assert best["meta"].get("blend", 1.0) == blend and "train" not in best
        moved = 0
        for k, w in last["model"].items():
            want = blend * w + (1 - blend) * start[k]
            assert torch.allclose(best["model"][k], want, atol=1e-6), k
            moved += not torch.equal(w, start[k])
        assert moved  # the fine-tune changed the weights, so the blend is not the start
    # A resumed run blends as it did, so it needs the model it started from.
    run = tmp_path / f"mine-{SMALL_SET.blend}"
    r = _invoke("train", "handwriting", mine, "-o", run, "--max-steps", 4, "--eval-every", 2, "-q", "--resume")
    assert r.exit_code != 0 and "resume it with the same --init" in r.output and "Traceback" not in r.output


def test_blend_needs_a_starting_model(tmp_path):
    from genseq.strokes.clean import to_offsets
    rng = np.random.default_rng(0)
    splits = {s: [Sample(f"s{i}", t, to_offsets([np.asarray(p) for p in _loops(t, rng)]))
                  for i, t in enumerate(TEXTS[:4])] for s in ("train", "val")}
    write_strokes(tmp_path / "d.h5", splits, source="test", terms="none", units="px")
    r = _invoke("train", "handwriting", tmp_path / "d.h5", "-o", tmp_path / "r", "--blend", 0.5, "--hidden", 8,
                "--layers", 1, "--max-steps", 1, "-q")
    assert r.exit_code != 0 and "--blend needs --init" in r.output and "Traceback" not in r.output


def test_blend_weights_mixes_shared_blocks_and_keeps_grown_columns():
    from genseq.train.blend import blend_weights
    start = {"w": torch.zeros(4, 3), "b": torch.ones(4), "n": torch.tensor(3)}
    tuned = {"w": torch.full((4, 5), 2.0), "b": torch.full((4,), 3.0), "n": torch.tensor(7), "new": torch.ones(2)}
    out = blend_weights(tuned, start, 0.25)
    assert torch.equal(out["w"][:, :3], torch.full((4, 3), 0.5))      # 0.25 * 2 + 0.75 * 0
    assert torch.equal(out["w"][:, 3:], torch.full((4, 2), 2.0))      # the grown columns: as tuned
    assert torch.equal(out["b"], torch.full((4,), 1.5))               # 0.25 * 3 + 0.75 * 1
    assert out["n"] == 7 and torch.equal(out["new"], tuned["new"])    # integers and tensors start lacks
    assert all(torch.equal(blend_weights(tuned, start, 1.0)[k], v) for k, v in tuned.items())
    assert torch.equal(tuned["w"], torch.full((4, 5), 2.0))            # the inputs are left alone


def test_a_fine_tune_on_inkml_carries_its_lines_sparser(tmp_path):
    """InkML lines (no pen times: resampled by arc length) are carried as JSONL lines are."""
    from genseq.hand.own import STYLE_DENSITY
    base = _base_model(tmp_path)
    rng = np.random.default_rng(2)
    groups, traces = [], []
    for t in TEXTS:
        refs = []
        for s in _loops(t, rng, scale=2.0):
            traces.append(f'<trace xml:id="t{len(traces)}">' + ", ".join(f"{x:.1f} {-y:.1f}" for x, y in s) + "</trace>")
            refs.append(f'<traceView traceDataRef="t{len(traces) - 1}"/>')
        groups.append(f'<traceGroup><annotation type="truth">{t}</annotation>{"".join(refs)}</traceGroup>')
    mine = tmp_path / "mine.inkml"
    mine.write_text('<ink xmlns="http://www.w3.org/2003/InkML">' + "".join(traces) + "".join(groups) + "</ink>")
    run = tmp_path / "ink"
    r = _invoke("train", "handwriting", mine, "--init", base, "-o", run, "--max-steps", 2, "-q")
    assert r.exit_code == 0, r.output
    styles = load_checkpoint(run / "last.pt", kind="handwriting")["meta"]["styles"]
    with StrokeDataset(run / "mine.h5") as ds:
        converted = {s.text: len(s.points) for s in ds.split("train")}
    assert styles and {st["text"] for st in styles} <= set(converted)
    ratio = sum(len(st["points"]) for st in styles) / sum(converted[st["text"]] for st in styles)
    assert abs(ratio - STYLE_DENSITY) < 0.04, ratio


def test_own_styles_leave_out_lines_a_model_file_cannot_carry(tmp_path):
    from genseq.hand.api import MAX_MODEL_STYLES
    from genseq.hand.model import HandwritingConfig
    from genseq.hand.own import own_styles
    from genseq.strokes.clean import to_offsets
    rng = np.random.default_rng(3)
    long = " ".join(["abc"] * (MAX_MODEL_STYLES[1] // 4 + 1))  # more characters than a carried line may have
    texts = [long, "abc", "cab a"]
    lines = [Sample(f"s{i}", t, to_offsets([np.asarray(s) for s in _loops(t, rng)])) for i, t in enumerate(texts)]
    data = tmp_path / "w.h5"
    write_strokes(data, {"train": lines, "val": lines[1:2]}, source="test", terms="none", units="px")
    config = HandwritingConfig(alphabet="abc .")
    chosen = own_styles(data, config, legible=lambda pool: np.zeros(len(pool)))
    assert len(long) > MAX_MODEL_STYLES[1] and {st["text"] for st in chosen} == {"abc", "cab a"}


def test_two_files_of_the_same_name_are_converted_apart(tmp_path):
    base = _base_model(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = _mine(tmp_path / "a", seed=1), _mine(tmp_path / "b", seed=2)
    run = tmp_path / "both"
    r = _invoke("train", "handwriting", a, b, "--init", base, "-o", run, "--max-steps", 2, "--eval-every", 2, "-q")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in run.glob("*.h5")) == ["mine-2.h5", "mine.h5"]
    with StrokeDataset(run / "mine.h5") as x, StrokeDataset(run / "mine-2.h5") as y:
        assert not np.array_equal(next(iter(x.split("train"))).points, next(iter(y.split("train"))).points)
    again = _invoke("train", "handwriting", a, b, "--init", base, "-o", run, "--max-steps", 4, "--eval-every", 2,
                    "-q", "--resume")
    assert again.exit_code == 0, again.output  # the resumed run finds both converted files
    twice = _invoke("train", "handwriting", a, a, "--init", base, "-o", tmp_path / "twice", "--max-steps", 2, "-q")
    assert twice.exit_code != 0 and "given twice" in twice.output


def test_a_refused_start_leaves_no_converted_file_behind(tmp_path):
    base = _base_model(tmp_path)
    mine = _mine(tmp_path)
    run = tmp_path / "refused"
    r = _invoke("train", "handwriting", mine, "--init", base, "-o", run, "--hidden", 400, "-q")
    assert r.exit_code != 0 and "keeps that model's sizes" in r.output
    assert not run.exists()  # the converted mine.h5 went with the refused run
    r = _invoke("train", "handwriting", mine, "--init", base, "-o", run, "-q", "--resume")
    assert r.exit_code != 0 and "start it again without --resume" in r.output and not run.exists()
    (run / "keep").mkdir(parents=True)  # a folder that holds something else keeps it
    r = _invoke("train", "handwriting", mine, "--init", base, "-o", run, "--hidden", 400, "-q")
    assert r.exit_code != 0 and sorted(p.name for p in run.iterdir()) == ["keep"]
