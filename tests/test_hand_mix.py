"""Handwriting training on several stroke files (HandTask with a mix), the Mixer that picks each
batch's file, and fine-tuning with a grown alphabet (grow_alphabet, adapt_init, --init)."""
import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from genseq.checkpoint import load_checkpoint, save_checkpoint
from genseq.cli import main
from genseq.errors import GenseqError
from genseq.hand.data import normalise
from genseq.hand.model import HandwritingConfig, HandwritingModel, encode_text
from genseq.hand.task import HandTask, config_from_data, grow_alphabet, run_config
from genseq.strokes import Sample, write_strokes
from genseq.strokes.batches import data_scale
from genseq.strokes.mixed import Mixer

TINY = dict(hidden=8, layers=1, mixtures=2, window=2)
TEXTS_A = ["abc", "cab a", "b.c", "aa bb", "c a b", "abc."]  # alphabet " .abc"
TEXTS_B = ["dab", "bed", "de a", "ed.", "add", "dee"]  # every line holds a 'd'; alphabet " .abde"
TEXTS_C = ["axb", "xx a", "cx", "b x", "xa", "cxz"]  # 'x' and 'z' are new to A


def _line(text: str, rng, size: float) -> np.ndarray:
    """Fake handwriting: one loop of 6 points per character, `size` its radius."""
    pts = []
    for ch in text:
        t = np.linspace(0, 2 * np.pi, 6)
        r = size * (1 + 0.1 * (ord(ch) % 5))
        seg = np.stack([np.cos(t) * r + rng.normal(0, 1, 6) + 1.5 * size, np.sin(t) * r + rng.normal(0, 1, 6)], 1)
        off = np.zeros((6, 3), np.float32)
        off[:, :2] = np.diff(np.vstack([[0, 0], seg]), axis=0)
        off[-1, 2] = 1.0
        pts.append(off)
    return np.concatenate(pts).astype(np.float32)


def _strokes(path, texts, size=20.0, seed=0):
    rng = np.random.default_rng(seed)
    splits = {s: [Sample(f"{s}{i}", t, _line(t, rng, size)) for i, t in enumerate(texts)]
              for s in ("train", "val", "test")}
    write_strokes(path, splits, source="test", terms="none", units="px")
    return path


@pytest.fixture
def files(tmp_path):
    # b is written at twice the size: its data scale differs from 1
    return (_strokes(tmp_path / "a.h5", TEXTS_A), _strokes(tmp_path / "b.h5", TEXTS_B, size=40.0, seed=1))


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


# -- Mixer -------------------------------------------------------------------------------------------

def test_mixer_shares_seed_and_zero_share():
    m = Mixer([0.5, 0.3, 0.2], seed=4)
    draws = np.array([m.next() for _ in range(20_000)])
    assert m.draws == 20_000
    np.testing.assert_allclose(np.bincount(draws, minlength=3) / len(draws), [0.5, 0.3, 0.2], atol=0.02)
    m = Mixer([7, 3], seed=0)  # shares need not sum to 1
    np.testing.assert_allclose(m.shares, [0.7, 0.3])
    assert abs(np.mean([m.next() for _ in range(20_000)]) - 0.3) < 0.02
    same = [Mixer([0.5, 0.5], seed=11) for _ in range(2)]
    seq = [same[0].next() for _ in range(200)]
    assert seq == [same[1].next() for _ in range(200)]
    assert seq != [Mixer([0.5, 0.5], seed=12).next() for _ in range(200)]
    # the sequence is a function of (seed, draw number): a mixer set to draw 50 continues it
    later = Mixer([0.5, 0.5], seed=11)
    later.draws = 50
    assert [later.next() for _ in range(150)] == seq[50:]
    only = Mixer([1, 0], seed=5)
    assert {only.next() for _ in range(2000)} == {0}
    last = Mixer([0, 1], seed=5)
    assert {last.next() for _ in range(2000)} == {1}


@pytest.mark.parametrize("bad", [[], [0, 0], [-1, 2], [float("nan"), 1], [float("inf"), 1], [[1, 2]]])
def test_mixer_refuses_bad_shares(bad):
    with pytest.raises(GenseqError, match="--mix"):
        Mixer(bad, seed=0)


# -- HandTask on two files ------------------------------------------------------------------------

def _has_d(task, batch) -> bool:
    return bool((batch.text == task.config.alphabet.index("d") + 1).any(dim=1).all())


def test_two_files_alphabet_mix_and_scale(files):
    a, b = files
    sizes = dict(TINY)
    config, scales, tuned = run_config([a, b], "synthesis", sizes)
    assert not tuned and config.alphabet == "".join(sorted(set("".join(TEXTS_A + TEXTS_B))))
    assert config == config_from_data([a, b], "synthesis", **sizes)
    assert scales[0] == 1.0 and scales[1] == pytest.approx(data_scale(config, b)) and scales[1] < 0.7
    torch.manual_seed(0)
    task = HandTask([a, b], config, batch=2, seed=3, mix=[0.7, 0.3], scale=scales)
    cpu = torch.device("cpu")
    from_b, n = 0, 400
    for _ in range(n):
        batch = task.train_batch(cpu)
        d = _has_d(task, batch)
        # a batch is one file's: all of its lines hold a 'd' (b) or none does (a)
        assert d or not (batch.text == config.alphabet.index("d") + 1).any()
        from_b += d
        if d:  # b's lines come in b's scale
            src = task.sources[1]
            i = batch.index[0]
            p = normalise(src.train_split[i].points, config, scales[1])
            np.testing.assert_allclose(batch.x[0, : len(p) - 1].numpy(), p[:-1], rtol=1e-6)
    assert abs(from_b / n - 0.3) < 0.08, from_b / n
    meta = task.meta()
    assert meta["mix"] == pytest.approx([0.7, 0.3]) and [f["data"] for f in meta["files"]] == ["a.h5", "b.h5"]
    # without --mix the shares follow the training lines (6 and 6)
    assert HandTask([a, b], config, batch=2).mixer.shares.tolist() == [0.5, 0.5]
    with pytest.raises(GenseqError, match="--mix has 3 shares for 2 files"):
        HandTask([a, b], config, batch=2, mix=[1, 1, 1])
    with pytest.raises(GenseqError, match="the same stroke file is given twice"):
        HandTask([a, a], config, batch=2)


def test_two_file_state_round_trip_and_refusals(files):
    a, b = files
    config, scales, _ = run_config([a, b], "synthesis", dict(TINY))
    cpu = torch.device("cpu")

    def make(mix=(0.6, 0.4), paths=(a, b), sc=scales):
        return HandTask(list(paths), config, batch=2, seed=5, mix=list(mix) if mix else None, scale=sc)

    full = make()
    want = [full.train_batch(cpu) for _ in range(14)]  # 6 lines per file in batches of 2: several epochs
    part = make()
    for _ in range(5):
        part.train_batch(cpu)
    st = part.state_dict()
    assert len(st["sources"]) == 2 and st["draws"] == 5
    st = json.loads(json.dumps(st))  # the state is plain data (it goes into the checkpoint)
    resumed = make()
    resumed.load_state_dict(st)
    for w in want[5:]:
        got = resumed.train_batch(cpu)
        assert got.index == w.index and torch.equal(got.x, w.x) and torch.equal(got.text, w.text)
    assert resumed.state_dict() == json.loads(json.dumps(full.state_dict()))
    with pytest.raises(GenseqError, match="cannot resume: --mix was"):
        make(mix=(0.5, 0.5)).load_state_dict(st)
    with pytest.raises(GenseqError, match="the run read 2 stroke file"):
        make(mix=None, paths=(a,), sc=scales[:1]).load_state_dict(st)
    with pytest.raises(GenseqError, match="the run read 1 stroke file"):
        make().load_state_dict(make(mix=None, paths=(a,), sc=scales[:1]).state_dict())


# -- growing the alphabet -----------------------------------------------------------------------------

@pytest.mark.parametrize("layers", [1, 2])
def test_grow_alphabet_keeps_weights_and_outputs(layers):
    old = HandwritingConfig(kind="synthesis", alphabet=" .abc", **{**TINY, "layers": layers})
    new = HandwritingConfig(**{**old.to_dict(), "alphabet": " .abcxz"})
    torch.manual_seed(0)
    m_old = HandwritingModel(old).eval()
    state = m_old.state_dict()
    grown = grow_alphabet(state, old, new, seed=1)
    m_new = HandwritingModel(new).eval()
    assert set(grown) == set(m_new.state_dict())
    for k, v in state.items():
        if k.endswith("weight_ih_l0") and k.startswith("lstms."):
            assert grown[k].shape == (v.shape[0], v.shape[1] + 2), k
            assert torch.equal(grown[k][:, : v.shape[1]], v), k  # old columns bit for bit
            fresh = grown[k][:, v.shape[1]:]
            bound = 1 / math.sqrt(old.hidden)
            assert fresh.abs().max() <= bound and fresh.abs().max() > 0, k
        else:
            assert torch.equal(grown[k], v), k
    assert torch.equal(state["lstms.0.weight_ih_l0"], m_old.state_dict()["lstms.0.weight_ih_l0"])  # not in place
    assert all(grown[k].shape == v.shape for k, v in m_new.state_dict().items())
    m_new.load_state_dict(grown)  # strict
    g2 = grow_alphabet(state, old, new, seed=1)
    assert all(torch.equal(g2[k], grown[k]) for k in grown)  # a function of the seed
    # Text of old characters only: the new columns multiply zeros of the one-hot window.
    texts = ["abc a", "c.b"]
    ids = torch.zeros(2, 5, dtype=torch.long)
    for i, t in enumerate(texts):
        ids[i, : len(t)] = encode_text(t, old.alphabet)
    assert torch.equal(ids, torch.stack([torch.nn.functional.pad(encode_text(t, new.alphabet), (0, 5 - len(t)))
                                         for t in texts]))  # the same ids in both alphabets
    mask = (ids > 0).float()
    x = torch.randn(2, 12, 3, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        p_old, _, e_old = m_old(x, ids, mask)
        p_new, _, e_new = m_new(x, ids, mask)
    for a, b in zip(p_old, p_new):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(e_old["phi"], e_new["phi"], rtol=1e-5, atol=1e-6)
    with pytest.raises(GenseqError, match="must extend"):
        grow_alphabet(state, old, HandwritingConfig(**{**old.to_dict(), "alphabet": "abc .x"}))


def test_adapt_init_grows_a_checkpoint_for_new_data(tmp_path, files):
    a, _ = files
    c = _strokes(tmp_path / "c.h5", TEXTS_C, seed=2)
    old = config_from_data(a, "synthesis", **TINY)
    torch.manual_seed(0)
    model = HandwritingModel(old)
    ck_path = tmp_path / "old.pt"
    save_checkpoint(ck_path, kind="handwriting", config=old.to_dict(), meta={"units": "px", "scale": 1.0},
                    model_state=model.state_dict())
    config, scales, tuned = run_config([c], "synthesis", dict(TINY), init=ck_path)
    assert tuned and config.alphabet == old.alphabet + "xz" and scales == [1.0]
    assert (config.hidden, config.norm_std) == (old.hidden, old.norm_std)  # sizes and normalisation of the model
    task = HandTask(c, config, batch=2, scale=scales, init=True)
    ck = task.adapt_init(load_checkpoint(ck_path, kind="handwriting"))
    assert ck["config"]["alphabet"] == config.alphabet and task.compatible(ck) is None
    task.model.load_state_dict(ck["model"])
    w = ck["model"]["lstms.0.weight_ih_l0"]
    assert torch.equal(w[:, : 3 + len(old.alphabet)], model.state_dict()["lstms.0.weight_ih_l0"])
    # the same alphabet: the checkpoint as it is
    same = HandTask(a, old, batch=2, init=True)
    ck0 = load_checkpoint(ck_path, kind="handwriting")
    assert same.adapt_init(ck0) is ck0


# -- end to end -----------------------------------------------------------------------------------------

def _base(files, run, *more):
    # CPU and fp32: resumed runs are bit-identical there; warm-up longer than the run, so the
    # learning rate of each step does not depend on --max-steps.
    return ["train", "handwriting", *files, "-o", run, "--hidden", 8, "--layers", 1, "--mixtures", 2,
            "--window", 2, "--batch", 2, "--eval-every", 2, "--warmup", 10, "--device", "cpu",
            "--precision", "fp32", "-q", *more]


def test_cli_two_files_scores_per_file_and_init_grows_alphabet(tmp_path, files):
    run = tmp_path / "run"
    r = _invoke(*_base(files, run, "--mix", "0.7,0.3", "--max-steps", 4))
    assert r.exit_code == 0, r.output
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [rec for rec in recs if "val_loss" in rec]
    assert [rec["step"] for rec in evals] == [2, 4]
    ck = load_checkpoint(run / "last.pt", kind="handwriting")
    config = HandwritingConfig.from_dict(ck["config"])
    assert config.alphabet == "".join(sorted(set("".join(TEXTS_A + TEXTS_B))))
    assert ck["meta"]["mix"] == pytest.approx([0.7, 0.3]) and len(ck["meta"]["files"]) == 2
    scales = [f["scale"] for f in ck["meta"]["files"]]
    for rec in evals:
        per = [rec["nll_per_point[a.h5]"], rec["nll_per_point[b.h5]"]]
        assert all(np.isfinite(per))
        # val_loss: the mix-weighted mean of the files' scores, in the model's normalised units
        log_std = [math.log(config.norm_std[0]) + math.log(config.norm_std[1]) - 2 * math.log(s) for s in scales]
        assert rec["val_loss"] == pytest.approx(0.7 * (per[0] - log_std[0]) + 0.3 * (per[1] - log_std[1]))
    assert load_checkpoint(run / "best.pt")["meta"]["best_val"] == min(rec["val_loss"] for rec in evals)
    # Fine-tune on a file with characters the model lacks: the alphabet grows.
    c = _strokes(tmp_path / "c.h5", TEXTS_C, seed=2)
    ft = tmp_path / "ft"
    r = _invoke("train", "handwriting", c, "-o", ft, "--init", run / "best.pt", "--max-steps", 2,
                "--eval-every", 2, "--batch", 2, "--device", "cpu", "-q")
    assert r.exit_code == 0, r.output
    ck2 = load_checkpoint(ft / "last.pt", kind="handwriting")
    assert ck2["config"]["alphabet"] == config.alphabet + "xz" and ck2["meta"]["init"]
    assert ck2["model"]["lstms.0.weight_ih_l0"].shape[1] == ck["model"]["lstms.0.weight_ih_l0"].shape[1] + 2
    assert {k: v for k, v in ck2["config"].items() if k != "alphabet"} == \
        {k: v for k, v in ck["config"].items() if k != "alphabet"}


def test_cli_two_file_resume_equals_uninterrupted(tmp_path, files):
    full, part = tmp_path / "full", tmp_path / "part"
    r = _invoke(*_base(files, full, "--mix", "0.7,0.3", "--max-steps", 4))
    assert r.exit_code == 0, r.output
    r = _invoke(*_base(files, part, "--mix", "0.7,0.3", "--max-steps", 2))
    assert r.exit_code == 0, r.output
    assert load_checkpoint(part / "last.pt")["train"]["step"] == 2
    r = _invoke(*_base(files, part, "--mix", "0.7,0.3", "--max-steps", 4, "--resume"))
    assert r.exit_code == 0, r.output
    a, b = load_checkpoint(full / "last.pt"), load_checkpoint(part / "last.pt")
    assert b["train"]["step"] == 4 and a["train"]["task"] == b["train"]["task"]
    assert b["train"]["task"]["draws"] == 4
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    # another mix, or another number of files, cannot resume the run
    r = _invoke(*_base(files, part, "--mix", "0.5,0.5", "--max-steps", 6, "--resume"))
    assert r.exit_code == 1 and "cannot resume: --mix was" in r.output, r.output
    r = _invoke(*_base(files[:1], part, "--max-steps", 6, "--resume"))
    assert r.exit_code == 1 and "2 stroke file(s), now 1" in r.output, r.output
    assert load_checkpoint(part / "last.pt")["train"]["step"] == 4


def test_per_file_scores_of_files_with_the_same_name(tmp_path):
    # Two files of one name in different folders (iam/train.h5, unipen/train.h5) keep a score each.
    (tmp_path / "iam").mkdir()
    (tmp_path / "unipen").mkdir()
    a = _strokes(tmp_path / "iam" / "train.h5", TEXTS_A)
    b = _strokes(tmp_path / "unipen" / "train.h5", TEXTS_B, size=40.0, seed=1)
    config, scales, _ = run_config([a, b], "synthesis", dict(TINY))
    torch.manual_seed(0)
    scores = HandTask([a, b], config, batch=2, scale=scales).evaluate(torch.device("cpu"))
    per_file = [k for k in scores if k.startswith("nll_per_point")]
    assert len(per_file) == 2, scores


def test_recognizer_on_two_files_reports_each_and_grows_its_alphabet(tmp_path):
    from genseq.reader.model import RecognizerConfig
    from genseq.reader.task import grow_reader
    a = _strokes(tmp_path / "a.h5", TEXTS_A)
    b = _strokes(tmp_path / "b.h5", TEXTS_B, seed=1)
    run = tmp_path / "reader"
    base = ["train", "recognizer", a, b, "--mix", "0.5,0.5", "-o", run, "--hidden", 8, "--layers", 1,
            "--batch", 3, "--eval-every", 2, "--warmup", 10, "--device", "cpu", "--precision", "fp32", "-q"]
    r = CliRunner().invoke(main, [str(x) for x in base + ["--max-steps", 2]])
    assert r.exit_code == 0, r.output
    rec = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    ev = [x for x in rec if "val_loss" in x][-1]
    assert "cer[a.h5]" in ev and "cer[b.h5]" in ev
    ck = load_checkpoint(run / "last.pt", kind="recognizer")
    assert ck["config"]["alphabet"] == " .abcde" and [f["data"] for f in ck["meta"]["files"]] == ["a.h5", "b.h5"]
    # resumed exactly like an uninterrupted run
    r = CliRunner().invoke(main, [str(x) for x in base + ["--max-steps", 4, "--resume"]])
    assert r.exit_code == 0, r.output
    whole = tmp_path / "whole"
    r = CliRunner().invoke(main, [str(x) for x in base[:base.index("-o")] + ["-o", whole] + base[base.index("-o") + 2:]
                                  + ["--max-steps", 4]])
    assert r.exit_code == 0, r.output
    got, want = (load_checkpoint(p / "last.pt", kind="recognizer")["model"] for p in (run, whole))
    assert all(torch.equal(got[k], want[k]) for k in want)
    # a fine-tune on a file with new characters: old output rows kept bit for bit, one new row per character
    c = _strokes(tmp_path / "c.h5", TEXTS_C, seed=2)
    r = CliRunner().invoke(main, [str(x) for x in ["train", "recognizer", c, "--init", run / "last.pt", "-o",
                                                   tmp_path / "ft", "--batch", 3, "--max-steps", 1, "-q"]])
    assert r.exit_code == 0, r.output
    old = RecognizerConfig.from_dict(ck["config"])
    grown = grow_reader(want, old, RecognizerConfig.from_dict({**ck["config"], "alphabet": " .abcdexz"}))
    assert grown["out.weight"].shape[0] == len(" .abcdexz") + 1
    assert torch.equal(grown["out.weight"][: len(old.alphabet) + 1], want["out.weight"])
    assert torch.equal(grown["out.bias"][: len(old.alphabet) + 1], want["out.bias"])
    assert all(torch.equal(grown[k], want[k]) for k in want if not k.startswith("out."))
    ft = load_checkpoint(tmp_path / "ft" / "last.pt", kind="recognizer")
    assert ft["config"]["alphabet"] == " .abcdexz"
