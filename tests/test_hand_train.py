import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from genseq.checkpoint import load_checkpoint
from genseq.cli import main

ALPHA = "abc ."  # the alphabet of the strokes_h5 fixture (conftest.py)


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_train_write_eval_resume_finetune(tmp_path, strokes_h5):
    run = tmp_path / "run"
    base = ["train", "handwriting", strokes_h5, "-o", run, "--hidden", 8, "--layers", 2, "--mixtures", 2,
            "--window", 2, "--batch", 3, "--eval-every", 2, "-q"]
    r = _invoke(*base, "--max-steps", 4)
    assert r.exit_code == 0, r.output
    for name in ("best.pt", "last.pt", "metrics.jsonl", "loss.svg", "samples.svg", "attention.svg"):
        assert (run / name).exists(), name
    ck = load_checkpoint(run / "last.pt", kind="handwriting")
    assert ck["config"]["alphabet"] == "".join(sorted(set(ALPHA)))
    r = _invoke(*base, "--max-steps", 6, "--resume")
    assert r.exit_code == 0, r.output
    assert load_checkpoint(run / "last.pt")["train"]["step"] == 6
    r = _invoke("eval", "handwriting", run / "best.pt", strokes_h5, "--split", "test", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert set(d) == {"nll_per_point", "nll_per_sequence", "points", "sequences"} and d["sequences"] == 6
    assert np.isfinite(d["nll_per_point"])
    out = tmp_path / "w.svg"
    r = _invoke("write", "abc cab", "-m", run / "best.pt", "-o", out, "--seed", 1)
    assert r.exit_code == 0, r.output
    assert out.read_text().startswith("<?xml") or "<svg" in out.read_text()
    r = _invoke("train", "handwriting", strokes_h5, "-o", tmp_path / "ft", "--init", run / "best.pt",
                "--max-steps", 2, "--eval-every", 2, "-q")
    assert r.exit_code == 0, r.output
    assert load_checkpoint(tmp_path / "ft" / "best.pt")["config"] == ck["config"]
    # A fine-tuned run resumes (twice) without repeating --init or the model's sizes.
    for steps in (3, 4):
        r = _invoke("train", "handwriting", strokes_h5, "-o", tmp_path / "ft", "--max-steps", steps,
                    "--eval-every", 2, "--resume", "-q")
        assert r.exit_code == 0, r.output
    assert load_checkpoint(tmp_path / "ft" / "last.pt")["train"]["step"] == 4
    # Size flags that disagree with the --init model are refused, not silently ignored.
    r = _invoke("train", "handwriting", strokes_h5, "-o", tmp_path / "ft2", "--init", run / "best.pt",
                "--kind", "prediction", "--hidden", 9, "--max-steps", 2, "-q")
    assert r.exit_code == 1 and not (tmp_path / "ft2" / "last.pt").exists()
    assert "--kind prediction (the model: synthesis), --hidden 9 (the model: 8)" in r.output


def test_eval_in_data_units_is_shift_invariant_to_normalisation(tmp_path, strokes_h5):
    """The same model with its std doubled and its outputs rescaled scores the same in data units."""
    from genseq.hand.evaluate import evaluate_split
    from genseq.hand.model import HandwritingConfig, HandwritingModel
    from genseq.strokes import StrokeDataset
    torch.manual_seed(0)
    config = HandwritingConfig(kind="synthesis", alphabet="".join(sorted(set(ALPHA))), hidden=8, layers=1,
                            mixtures=2, window=2, norm_std=(10.0, 10.0))
    m1 = HandwritingModel(config)
    cfg2 = HandwritingConfig(**{**config.to_dict(), "norm_std": (20.0, 20.0)})
    m2 = HandwritingModel(cfg2)
    m2.load_state_dict(m1.state_dict())
    with StrokeDataset(strokes_h5) as ds:
        a = evaluate_split(m1, ds.split("val"), torch.device("cpu"))
        # Feeding m2 data scaled by 2 is the same maths as m1 on the original data.
        b = evaluate_split(m2, ds.split("val"), torch.device("cpu"), scale=2.0)
    assert a["points"] == b["points"]
    assert a["nll_per_point"] == pytest.approx(b["nll_per_point"], rel=1e-5)


def test_write_api_wraps_and_errors(tmp_path):
    from genseq.errors import GenseqError
    from genseq.hand.model import HandwritingConfig, HandwritingModel
    from genseq.hand.api import HandModel, WriteOptions, clean_text, wrap_lines, write_handwriting
    assert wrap_lines("aaa bbb ccc\n\nddd", 7) == ["aaa bbb", "ccc", "", "ddd"]
    assert clean_text("a\tb\x07c\r\n", "abc ") == "a bc\n"
    with pytest.raises(GenseqError, match="cannot write 2 character"):
        clean_text("abz!", "abc ")
    assert clean_text("abz!", "abc ", unknown="drop") == "ab"
    assert clean_text("abz!", "abc ", unknown="replace") == "ab  "
    torch.manual_seed(0)
    config = HandwritingConfig(kind="synthesis", alphabet="abc ", hidden=8, layers=1, mixtures=2, window=2)
    hm = HandModel(HandwritingModel(config).eval(), {})
    opts = WriteOptions(max_chars=5, seed=3)
    pages, lines = write_handwriting("abc abc\n\ncab", hm, opts)
    assert [ln.text if ln else "" for ln in lines] == ["abc", "abc", "", "cab"]
    pages2, _ = write_handwriting("abc abc\n\ncab", hm, opts)
    assert pages == pages2
    with pytest.raises(GenseqError, match="nothing to write"):
        write_handwriting("   \n ", hm, opts)
    with pytest.raises(GenseqError, match="limit"):
        write_handwriting("a" * 30, hm, WriteOptions(max_text=10))
    pred = HandModel(HandwritingModel(HandwritingConfig(kind="prediction", hidden=8, layers=1, mixtures=2)), {})
    with pytest.raises(GenseqError, match="prediction model"):
        write_handwriting("abc", pred, opts)


def test_oversampling_rare_characters(tmp_path, strokes_h5):
    from genseq.strokes.batches import oversampled
    texts = ["abc", "c.b", "aa", "x."]
    np.testing.assert_array_equal(oversampled(np.array([0, 1, 2]), texts, ".", 3), [0, 1, 2, 1, 1])
    np.testing.assert_array_equal(oversampled(np.array([0, 2]), texts, ".", 3), [0, 2])  # none: unchanged
    run = tmp_path / "run"
    base = ["train", "handwriting", strokes_h5, "-o", run, "--hidden", 8, "--layers", 1, "--mixtures", 2,
            "--window", 2, "--batch", 2, "--eval-every", 2, "-q"]
    r = _invoke(*base, "--max-steps", 2, "--oversample", ".", "--oversample-factor", 4)
    assert r.exit_code == 0, r.output
    ck = load_checkpoint(run / "last.pt")
    assert ck["meta"]["oversample"] == [".", 4]
    # 6 training lines, 2 of them with a '.': 6 + 2 * 3 lines per pass
    assert ck["train"]["task"]["sequences"] == 12 and ck["train"]["task"]["oversample"] == [".", 4]
    r = _invoke(*base, "--max-steps", 3, "--oversample", ".", "--oversample-factor", 2, "--resume")
    assert r.exit_code == 1 and "cannot resume: --oversample was '.' x4, now '.' x2" in r.output
    r = _invoke(*base, "--max-steps", 3, "--oversample", ".", "--oversample-factor", 4, "--resume")
    assert r.exit_code == 0, r.output
    # a character no training line holds (a typo) would oversample nothing: refused, no run folder left
    r = _invoke(*base[:4], tmp_path / "none", *base[5:], "--max-steps", 1, "--oversample", "@~")
    assert r.exit_code == 1 and "--oversample: no training line holds any of '@~'" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "none").exists()


@pytest.mark.parametrize("bad", ["xz", ("xz",), ("", 4), ("xz", 0), ("xz", "4"), ("xz", 2.5), ("xz", True)])
def test_oversample_from_python_is_checked(bad, tmp_path, strokes_h5):
    from genseq.hand.train import train_handwriting
    from genseq.errors import GenseqError
    with pytest.raises(GenseqError, match=r"oversample must be \(characters, factor\)"):
        train_handwriting(strokes_h5, tmp_path / "run", hidden=8, layers=1, mixtures=2, window=2, batch=2,
                          oversample=bad, max_steps=1, progress=False)
    assert not (tmp_path / "run" / "last.pt").exists()


@pytest.mark.parametrize("kind, sizes", [("handwriting", ["--mixtures", "100000000"]),
                                         ("handwriting", ["--hidden", "100000"]),
                                         ("recognizer", ["--hidden", "100000"])])
def test_training_a_stroke_model_too_big_to_load_is_refused(tmp_path, strokes_h5, kind, sizes):
    r = _invoke("train", kind, strokes_h5, "-o", tmp_path / "big", "--max-steps", 1, "-q", *sizes)
    assert r.exit_code == 1 and "weights; genseq builds at most 200,000,000" in r.output, r.output
    assert not (tmp_path / "big" / "last.pt").exists()


def test_augment_maps_are_small_deterministic_affine_maps():
    from genseq.hand.data import affine, augment_maps
    rng = np.random.default_rng
    np.testing.assert_array_equal(augment_maps(rng(0), 3, 0.0), np.tile(np.eye(2), (3, 1, 1)))
    A = augment_maps(rng(1), 500, 1.0)
    np.testing.assert_array_equal(A, augment_maps(rng(1), 500, 1.0))
    assert A.shape == (500, 2, 2) and np.abs(A - np.eye(2)).max() < 0.3
    # every map changes the line, and the four parameters spread out to their bounds
    assert (np.abs(A - np.eye(2)).max((1, 2)) > 1e-4).all()
    det = np.linalg.det(A)  # = s_x s_y: stretches within ±10% each
    assert det.min() < 0.85 and det.max() > 1.15 and 0.81 < det.min() and det.max() < 1.23
    shear = A[:, 0, 1] / A[:, 1, 1]  # ≈ k - θ for small θ
    assert shear.min() < -0.13 and shear.max() > 0.13 and np.abs(shear).max() < 0.2
    pts = np.array([[0, 0, 0], [3, 4, 0], [-1, 2, 1]], np.float32)
    out = affine(pts, A[0])
    np.testing.assert_allclose(out[:, :2], pts[:, :2] @ A[0].T, rtol=1e-6)
    np.testing.assert_array_equal(out[:, 2], pts[:, 2])  # pen bits untouched


def test_augmented_batches_follow_the_data_position_and_resume(strokes_h5):
    from genseq.hand.data import affine, make_batch, normalise
    from genseq.hand.task import HandTask, config_from_data
    config = config_from_data(strokes_h5, "synthesis", hidden=8, layers=1, mixtures=2, window=2)
    plain = HandTask(strokes_h5, config, batch=2, seed=3)
    assert plain.next_maps(2) is None
    runs = [HandTask(strokes_h5, config, batch=2, seed=3, augment=1.0) for _ in range(2)]
    cpu = torch.device("cpu")
    first = [runs[0].train_batch(cpu) for _ in range(5)]
    for _ in range(3):
        runs[1].train_batch(cpu)
    resumed = HandTask(strokes_h5, config, batch=2, seed=3, augment=1.0)
    resumed.load_state_dict(runs[1].state_dict())
    for want in first[3:]:  # a resumed run draws the same lines and the same maps
        got = resumed.train_batch(cpu)
        assert got.index == want.index and torch.equal(got.x, want.x) and torch.equal(got.y, want.y)
    # every batch, and the same batch position in the next epoch, gets maps of its own
    walk = HandTask(strokes_h5, config, batch=2, seed=3, augment=1.0)
    maps = []
    for _ in range(4):  # 6 lines in batches of 2: steps 0-2 are epoch 0, step 3 starts epoch 1
        idx = walk.next_index()
        maps.append(walk.next_maps(len(idx)))
    assert walk.sources[0].epoch == 1 and walk.sources[0].position == 1
    for i in range(4):
        for j in range(i):
            assert not np.allclose(maps[i], maps[j]), (i, j)
    # the maps are applied to the data-unit offsets, before normalisation
    b = first[0]
    maps = HandTask(strokes_h5, config, batch=2, seed=3, augment=1.0)
    idx = maps.next_index()
    A = maps.next_maps(len(idx))
    p = normalise(affine(maps.train_split[idx[0]].points, A[0]), config)
    np.testing.assert_allclose(b.x[0, : len(p) - 1].numpy(), p[:-1], rtol=1e-6)
    unmapped = make_batch(maps.train_split, idx, config)
    assert not torch.allclose(unmapped.x[:, :, :2], b.x[:, :, :2])
    assert torch.equal(unmapped.x[:, :, 2], b.x[:, :, 2]) and torch.equal(unmapped.mask, b.mask)


def test_train_with_augment_records_it_and_refuses_bad_strength(tmp_path, strokes_h5):
    run = tmp_path / "run"
    base = ["train", "handwriting", strokes_h5, "-o", run, "--hidden", 8, "--layers", 1, "--mixtures", 2,
            "--window", 2, "--batch", 2, "--eval-every", 2, "-q"]
    r = _invoke(*base, "--max-steps", 2, "--augment", 1)
    assert r.exit_code == 0, r.output
    assert load_checkpoint(run / "last.pt")["meta"]["augment"] == 1.0
    r = _invoke(*base, "--max-steps", 3, "--resume")
    assert r.exit_code == 1 and "cannot resume: --augment was 1, now 0" in r.output, r.output
    from genseq.hand.task import HandTask, config_from_data
    task = HandTask(strokes_h5, config_from_data(strokes_h5, "synthesis", hidden=8, layers=1, mixtures=2,
                                                 window=2), batch=2, augment=1.0)
    old = task.state_dict()
    del old["augment"]  # a run from before --augment: it trained without
    with pytest.raises(Exception, match="--augment was 0, now 1"):
        task.load_state_dict(old)
    assert _invoke(*base, "--max-steps", 3, "--augment", 1, "--resume").exit_code == 0
    for bad in ("-1", "nan", "5"):
        r = _invoke(*base, "--max-steps", 2, "--augment", bad)
        assert r.exit_code == 2 and "--augment" in r.output, (bad, r.output)


def test_eval_by_character_class_splits_the_points(tmp_path, strokes_h5):
    from genseq.hand.evaluate import char_class, evaluate_split
    from genseq.hand.model import HandwritingModel
    from genseq.hand.task import config_from_data
    from genseq.strokes import StrokeDataset
    assert [char_class(c) for c in "aZ7 .'ß中"] == ["lower", "upper", "digit", "space", "punct", "punct",
                                                   "lower", "lower"]
    torch.manual_seed(0)
    model = HandwritingModel(config_from_data(strokes_h5, "synthesis", hidden=8, layers=1, mixtures=2, window=2))
    with StrokeDataset(strokes_h5) as ds:
        r = evaluate_split(model, ds.split("val"), torch.device("cpu"), by_class=True)
        plain = evaluate_split(model, ds.split("val"), torch.device("cpu"))
    assert {k: v for k, v in r.items() if k != "classes"} == pytest.approx(plain)
    classes = r["classes"]
    assert set(classes) <= {"lower", "space", "punct"} and "lower" in classes  # the fixture's "abc ."
    assert sum(c["points"] for c in classes.values()) == r["points"]
    mean = sum(c["nll_per_point"] * c["points"] for c in classes.values()) / r["points"]
    assert mean == pytest.approx(r["nll_per_point"], rel=1e-5)
    # size-free: the NLL in data units less 2 log r of each step that moved, summed over the classes
    import math
    from genseq.hand.data import make_batch
    from genseq.hand.evaluate import step_log_length
    from genseq.hand.mdn import mdn_nll
    with StrokeDataset(strokes_h5) as ds, torch.no_grad():
        split = ds.split("val")
        b = make_batch(split, list(range(len(split))), model.config)
        params, _, extras = model(b.x, b.text, b.text_mask)
        log_r = step_log_length(b.y, model.config.norm_mean, model.config.norm_std, 1.0)
        moved = (b.mask > 0) & torch.isfinite(log_r) & (extras["phi"].amax(2) > 0)
        log_std = sum(math.log(s) for s in model.config.norm_std)
        want = float((mdn_nll(params, b.y, b.mask).double() + log_std - 2 * log_r)[moved].mean())
        # the points of lowercase letters just after a space, counted here from phi and the text
        at = extras["phi"].argmax(2)  # (B, T)
        kept = (b.mask > 0) & (extras["phi"].amax(2) > 0)
        space = model.config.alphabet.index(" ") + 1
        is_lower = torch.tensor([False] + [c.islower() for c in model.config.alphabet])
        after_space = (b.text.gather(1, (at - 1).clamp(min=0)) == space) & (at > 0)
        word_start = int((kept & after_space & is_lower[b.text.gather(1, at)]).sum())
    assert classes["lower"]["positions"]["word_start"]["points"] == word_start > 0
    got = sum(c["size_free_nll_per_point"] * c["moving_points"] for c in classes.values())
    assert sum(c["moving_points"] for c in classes.values()) == int(moved.sum())
    assert got / int(moved.sum()) == pytest.approx(want, rel=1e-5)
    y = torch.tensor([[[(3.0 - 1.0) / 2.0, (4.0 + 1.0) / 4.0, 0.0], [(0 - 1.0) / 2.0, (0 + 1.0) / 4.0, 1.0]]])
    lr = step_log_length(y, (1.0, -1.0), (2.0, 4.0), 0.5)  # data-unit steps (6, 8) and (0, 0): scale 0.5
    assert float(lr[0, 0]) == pytest.approx(math.log(10.0)) and lr[0, 1] == -math.inf
    # attribution: with phi one-hot on chosen characters, each point goes to that character's class
    from genseq.hand.evaluate import CLASSES, POSITIONS, _class_sums, _groups, _vs_lower
    text = torch.tensor([[1, 2, 3, 0], [3, 1, 0, 0]])  # ids into "a.Z": 1 lower, 2 punct, 3 upper; 0 pad
    cls = torch.tensor([0, CLASSES.index("lower"), CLASSES.index("punct"), CLASSES.index("upper")])
    at = torch.tensor([[0, 0, 1, 2, 2], [0, 1, 1, 1, 0]])  # (B, T) attended position
    phi = torch.nn.functional.one_hot(at, 4).float()
    phi[1, 4] = 0  # attends to nothing: in no class
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]).float()  # the last point of line 0 is padding
    nll = torch.arange(10.0).view(2, 5)
    spaces = torch.tensor([False, False, False, False])
    sums, counts = _class_sums(*_groups(phi, text, cls, spaces), mask, nll)
    want = {"lower": (0 + 1 + 6 + 7 + 8, 5), "punct": (2, 1), "upper": (3 + 5, 2)}
    for name, (total, n) in want.items():
        k = CLASSES.index(name)
        assert (float(sums[k].sum()), int(counts[k].sum())) == (total, n), name
    assert int(counts.sum()) == 8
    # positions: "a.Z" a first, . and Z inside; "Za" Z first, a inside. With "." a space, Z follows one.
    first, start, inside = (POSITIONS.index(p) for p in ("line_start", "word_start", "in_word"))
    lower, upper = CLASSES.index("lower"), CLASSES.index("upper")
    assert (float(sums[lower, first]), int(counts[lower, first])) == (0 + 1, 2)
    assert (float(sums[lower, inside]), int(counts[lower, inside])) == (6 + 7 + 8, 3)
    assert (float(sums[upper, first]), int(counts[upper, first])) == (5, 1)
    assert (float(sums[upper, inside]), int(counts[upper, inside])) == (3, 1)
    sums, counts = _class_sums(*_groups(phi, text, cls, torch.tensor([False, False, True, False])), mask, nll)
    assert (float(sums[upper, start]), int(counts[upper, start])) == (3, 1) and counts[upper, inside] == 0
    # against lowercase at the class's own positions: first (5 - 0.5) and inside (3 - 7), weighted 1:1
    sums, counts = _class_sums(*_groups(phi, text, cls, spaces), mask, nll)
    assert _vs_lower(sums, counts, upper) == pytest.approx(((5 - 0.5) + (3 - 7)) / 2)
    assert _vs_lower(sums, counts, lower) is None
    for c in classes.values():  # the positions add up to the class
        assert sum(a["points"] for a in c["positions"].values()) == c["points"]
        assert sum(a["nll_per_point"] * a["points"] for a in c["positions"].values()) == pytest.approx(
            c["nll_per_point"] * c["points"], rel=1e-6)
    run = tmp_path / "run"
    assert _invoke("train", "handwriting", strokes_h5, "-o", run, "--hidden", 8, "--layers", 1, "--mixtures", 2,
                   "--window", 2, "--batch", 3, "--max-steps", 1, "-q").exit_code == 0
    out = _invoke("eval", "handwriting", run / "best.pt", strokes_h5, "--by-class")
    assert out.exit_code == 0 and "lower" in out.output and "nats/point over" in out.output, out.output
    assert "line start" in out.output and "against lowercase letters at the same positions" in out.output
    d = json.loads(_invoke("eval", "handwriting", run / "best.pt", strokes_h5, "--by-class", "--json").output)
    assert sum(c["points"] for c in d["classes"].values()) == d["points"]
    pred = tmp_path / "pred"
    assert _invoke("train", "handwriting", strokes_h5, "-o", pred, "--kind", "prediction", "--hidden", 8,
                   "--layers", 1, "--mixtures", 2, "--batch", 3, "--max-steps", 1, "-q").exit_code == 0
    out = _invoke("eval", "handwriting", pred / "best.pt", strokes_h5, "--by-class")
    assert out.exit_code == 1 and "--by-class needs a synthesis model" in out.output, out.output


def test_dropout_acts_while_training_only_and_resumes_exactly(tmp_path, strokes_h5):
    from genseq.hand.model import HandwritingModel
    from genseq.hand.task import config_from_data
    config = config_from_data(strokes_h5, "synthesis", hidden=8, layers=3, mixtures=2, window=2)
    torch.manual_seed(0)
    model = HandwritingModel(config)
    x, ids = torch.randn(2, 7, 3), torch.tensor([[1, 2, 3], [2, 1, 0]])
    model.eval()
    plain = model(x, ids)[0].mu1
    model.dropout = 0.5
    assert torch.equal(model(x, ids)[0].mu1, plain)  # sampling and evaluation never drop
    model.train()
    torch.manual_seed(1)
    a = model(x, ids)[0].mu1
    torch.manual_seed(1)
    assert torch.equal(model(x, ids)[0].mu1, a) and not torch.allclose(a, plain)
    model.dropout = 0.0
    assert torch.equal(model(x, ids)[0].mu1, plain)
    # through the CLI: recorded, resumed exactly, and a resume with another share is refused
    base = ["train", "handwriting", strokes_h5, "--hidden", 8, "--layers", 2, "--mixtures", 2,
            "--window", 2, "--batch", 2, "--eval-every", 2, "-q", "--dropout", "0.3"]
    full, part = tmp_path / "full", tmp_path / "part"
    assert _invoke(*base, "-o", full, "--max-steps", 4).exit_code == 0
    assert _invoke(*base, "-o", part, "--max-steps", 2).exit_code == 0
    r = _invoke(*base, "-o", part, "--max-steps", 4, "--resume")
    assert r.exit_code == 0, r.output
    a, b = load_checkpoint(full / "last.pt"), load_checkpoint(part / "last.pt")
    assert a["meta"]["dropout"] == 0.3 and b["train"]["step"] == 4
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    r = _invoke(*base[:-1], "0.1", "-o", part, "--max-steps", 6, "--resume")
    assert r.exit_code == 1 and "cannot resume: --dropout was 0.3, now 0.1" in r.output, r.output
    for bad in ("-0.1", "nan", "1"):
        r = _invoke(*base[:-1], bad, "-o", tmp_path / "bad", "--max-steps", 2)
        assert r.exit_code == 2 and "--dropout" in r.output, (bad, r.output)
