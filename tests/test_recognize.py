"""The recognizer (BiLSTM + CTC) and best-of-C line choice (C candidates) in `genseq write`."""
import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from genseq.checkpoint import load_checkpoint, save_checkpoint
from genseq.errors import GenseqError
from genseq.reader.evaluate import char_error_rate, edit_distance
from genseq.reader.model import Recognizer, RecognizerConfig, frames, greedy_decode
from genseq.hand.sample import HandLine
from genseq.strokes import Sample, write_strokes
from cli_checks import invoke
from strokes_fixtures import fake_reading_file, written_pair

ALPHA = " .abc"
TEXTS = ["abc", "cab a", "b.c", "aa bb", "c a b", "abc.", "ba ca", "cc.a"]


def _line(text: str, rng) -> np.ndarray:
    """Fake handwriting a reader can learn: per character a stroke whose size and
    direction depend on the character, then a pen lift."""
    pts = []
    for ch in text:
        k = ALPHA.index(ch)
        n = 6
        ang = np.linspace(0, 2 * np.pi, n) + k
        r = 5 + 6 * k
        off = np.zeros((n, 3), np.float32)
        off[:, 0] = np.cos(ang) * r + 4 + rng.normal(0, 0.5, n)
        off[:, 1] = np.sin(ang) * r * (1 if k % 2 else -1) + rng.normal(0, 0.5, n)
        off[-1, 2] = 1.0
        pts.append(off)
    return np.concatenate(pts).astype(np.float32)


@pytest.fixture(scope="module")
def strokes_h5(tmp_path_factory):
    return fake_reading_file(tmp_path_factory.mktemp("rec") / "s.h5", TEXTS, _line, seed=0)


_invoke = invoke


@pytest.fixture(scope="module")
def trained(strokes_h5, tmp_path_factory):
    """A tiny recognizer trained on the fake handwriting until it reads it."""
    run = tmp_path_factory.mktemp("recrun")
    r = _invoke("train", "recognizer", strokes_h5, "-o", run, "--hidden", 24, "--layers", 1, "--stride", 2,
                "--batch", 8, "--max-steps", 300, "--eval-every", 150, "--lr", 1e-2, "--warmup", 10,
                "--dropout", 0, "--no-augment", "-q")
    assert r.exit_code == 0, r.output
    return run


def test_shapes_padding_and_impossible_alignments():
    with pytest.raises(GenseqError, match="dropout"):
        RecognizerConfig(alphabet=ALPHA, dropout=1.0)
    torch.manual_seed(0)
    config = RecognizerConfig(alphabet=ALPHA, hidden=8, layers=2, stride=3)
    m = Recognizer(config).eval()
    x = torch.randn(3, 10, 3)
    n = torch.tensor([10, 7, 2])
    logp = m(x, n)
    assert logp.shape == (3, 4, len(ALPHA) + 1)  # ceil(10 / 3) frames, blank + alphabet
    assert torch.allclose(logp.exp().sum(-1), torch.ones(3, 4), atol=1e-5)
    assert frames(n, 3).tolist() == [4, 3, 1]
    text = torch.tensor([[3, 4], [3, 3], [3, 4]])
    nll = m.nll(x, n, text, torch.tensor([2, 2, 2]))
    # Line 2 has one frame for two characters: impossible, +inf (never NaN) so it is never chosen.
    assert torch.isfinite(nll[:2]).all() and nll[2] == float("inf")
    # Padding does not change a line's score, whatever it holds (even NaN): line 1 alone scores the same.
    alone = m.nll(x[1:2, :7], n[1:2], text[1:2], torch.tensor([2]))
    assert alone.item() == pytest.approx(nll[1].item(), rel=1e-5)
    x[1, 7:] = float("nan")
    assert m.nll(x, n, text, torch.tensor([2, 2, 2]))[1].item() == pytest.approx(alone.item(), rel=1e-5)


def test_greedy_decode_and_edit_distance():
    # frames: blank a a blank a b b -> "aab"; only the first 5 frames count for line 2.
    ids = torch.tensor([[0, 3, 3, 0, 3, 4, 4], [3, 0, 3, 5, 5, 4, 4]])
    logp = torch.nn.functional.one_hot(ids, 6).float().log()
    assert greedy_decode(logp, torch.tensor([7, 5]), ALPHA) == ["aab", "aac"]
    assert edit_distance("kitten", "sitting") == 3 and edit_distance("", "abc") == 3
    # edits over all lines per reference character: (3 + 0) / (6 + 2)
    assert char_error_rate(["kitten", "ab"], ["sitting", "ab"]) == 3 / 8


def test_read_right_marks_each_reference_character():
    from genseq.reader.evaluate import read_right
    assert read_right("box", "bod") == [True, True, False]  # substituted
    assert sorted(read_right("555", "55")) == [False, True, True]  # one dropped (which one: either)
    assert read_right("ab", "axb") == [True, True]  # an insertion misreads nothing
    assert read_right("abc", "") == [False] * 3 and read_right("", "ab") == []
    assert read_right("ax", "xa").count(True) == 1  # of the minimal alignments, one with a match


def test_trains_to_read_resumes_and_evaluates(trained, strokes_h5, tmp_path):
    rows = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "cer" in r]
    assert evals[-1]["cer"] < 0.2 < rows[0]["train_loss"], evals  # it learned to read
    assert (trained / "recognized.txt").read_text().startswith("step 300")
    r = _invoke("eval", "recognizer", trained / "best.pt", strokes_h5, "--split", "test", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert set(d) == {"cer", "lines_exact", "nll_per_char", "chars", "lines"} and d["lines"] == 24
    assert d["cer"] < 0.2
    r = _invoke("eval", "recognizer", trained / "best.pt", strokes_h5)
    assert r.exit_code == 0 and "character error rate" in r.output
    r = _invoke("eval", "recognizer", trained / "best.pt", strokes_h5, "--split", "test", "--chars", ".", "--json")
    d2 = json.loads(r.output)
    # 8 texts x 3 lines; '.' appears 3 times in TEXTS
    assert d2["chars_seen"] == 9 and d2["chars_read"] <= 9 and d2["chars_recall"] == d2["chars_read"] / 9
    assert {k: d2[k] for k in d} == d
    r = _invoke("eval", "recognizer", trained / "best.pt", strokes_h5, "--chars", ".")
    assert r.exit_code == 0 and "of 9 read right" in r.output
    # Resume continues the same run.
    run = tmp_path / "r"
    base = ["train", "recognizer", strokes_h5, "-o", run, "--hidden", 8, "--layers", 1, "--batch", 4,
            "--dropout", 0.2, "--eval-every", 2, "-q"]
    assert _invoke(*base, "--max-steps", 2).exit_code == 0
    r = _invoke(*base, "--max-steps", 4, "--resume")
    assert r.exit_code == 0, r.output
    assert load_checkpoint(run / "last.pt", kind="recognizer")["train"]["step"] == 4
    r = _invoke(*base[:-1], "--hidden", 9, "--max-steps", 6, "--resume", "-q")
    assert r.exit_code == 1 and "--hidden 9 (was 8)" in r.output
    # A fine-tuned run keeps its model's sizes, and resumes without repeating them.
    ft = ["train", "recognizer", strokes_h5, "-o", tmp_path / "ft", "--init", run / "last.pt", "--batch", 4,
          "--eval-every", 2, "-q"]
    assert _invoke(*ft, "--max-steps", 2).exit_code == 0
    for steps in (3, 4):  # twice: the second resume reads a checkpoint the first one wrote
        r = _invoke(*ft[:5], "--batch", 4, "--eval-every", 2, "-q", "--max-steps", steps, "--resume")
        assert r.exit_code == 0, r.output
    ck = load_checkpoint(tmp_path / "ft" / "last.pt", kind="recognizer")
    assert ck["train"]["step"] == 4 and ck["config"]["hidden"] == 8 and ck["meta"]["init"]
    # fine-tuning may change the dropout (not a size); a size flag that disagrees is refused
    r = _invoke(*ft[:4], tmp_path / "ft3", *ft[5:], "--dropout", 0.4, "--max-steps", 1)
    assert r.exit_code == 0, r.output
    assert load_checkpoint(tmp_path / "ft3" / "last.pt", kind="recognizer")["config"]["dropout"] == 0.4
    r = _invoke(*ft[:4], tmp_path / "ft4", *ft[5:], "--hidden", 9, "--max-steps", 1)
    assert r.exit_code == 1 and "--hidden 9 (the model: 8)" in r.output


def test_reader_prefers_the_right_text(trained, strokes_h5):
    """Given strokes of 'cab a' and of 'abc a', the trained reader scores each text higher on its own strokes."""
    from genseq.hand.choose import read_lines, read_scores
    from genseq.reader import load_recognizer
    m = load_recognizer(trained / "best.pt")
    a, b = written_pair(_line, m.config.norm_std)
    s = read_scores(m, [a, b, a, b], ["cab a", "cab a", "abc a", "abc a"])
    assert s[0] > s[1] and s[3] > s[2]
    assert [edit_distance(r, t) <= 1 for r, t in zip(read_lines(m, [a, b]), ["cab a", "abc a"])] == [True, True]
    # The first offset (the jump from the priming text to the line) is not read.
    jumped = a.copy()
    jumped[0, :2] = (40.0, -25.0)
    # Same batch size on both sides: a GPU's LSTM kernels round differently at another.
    assert read_scores(m, [jumped], ["cab a"])[0] == pytest.approx(read_scores(m, [a], ["cab a"])[0], rel=1e-6)
    jumped[1, :2] = (40.0, -25.0)  # ...but the second is
    assert read_scores(m, [jumped], ["cab a"])[0] != pytest.approx(read_scores(m, [a], ["cab a"])[0], rel=1e-3)


def test_choose_prefers_good_status_then_score(monkeypatch):
    import genseq.hand.choose as choose_mod
    pts = np.zeros((8, 3), np.float32)
    lines = [HandLine("ab", pts, None, st) for st in ("ok", "ok", "stalled", "ran_on", "ok", "skipped")]
    monkeypatch.setattr(choose_mod, "_ctc_scores",
                        lambda logp, nf, t, alphabet: np.array([-5.0, -2.0, -1.0, -9.0, -3.0, 0.0]))
    m = Recognizer(RecognizerConfig(alphabet="ab", hidden=4, layers=1))
    got = choose_mod.choose(lines, 3, m)
    assert got == [lines[1], lines[4]]  # line 1: best of two ok; line 2: the only ok one beats a higher score
    # Texts the reader cannot spell keep the first good draw.
    odd = [HandLine("zz", pts, None, st) for st in ("stalled", "ok", "ok")]
    assert choose_mod.choose(odd, 3, m) == [odd[1]]
    # An empty line never wins, even against a poor score; NaN scores count as -inf.
    empty = [HandLine("ab", np.zeros((0, 3), np.float32), None, "ok"), HandLine("ab", pts, None, "ok"),
             HandLine("ab", pts, None, "ok")]
    monkeypatch.setattr(choose_mod, "_ctc_scores", lambda logp, nf, t, alphabet: np.array([-80.0, -90.0])[: len(t)])
    assert choose_mod.choose(empty, 3, m) == [empty[1]]


def test_write_with_candidates(trained, tmp_path):
    from genseq.hand.model import HandwritingConfig, HandwritingModel
    from genseq.hand.api import HandModel, WriteOptions, write_handwriting
    torch.manual_seed(0)
    config = HandwritingConfig(kind="synthesis", alphabet=ALPHA, hidden=8, layers=1, mixtures=2, window=2)
    hm = HandModel(HandwritingModel(config).eval(), {})
    opts = WriteOptions(max_chars=5, seed=3, candidates=3, recognizer=trained / "best.pt", unprimed=True)
    pages, lines = write_handwriting("abc abc\n\ncab", hm, opts)
    assert [ln.text if ln else "" for ln in lines] == ["abc", "abc", "", "cab"]
    assert write_handwriting("abc abc\n\ncab", hm, opts)[0] == pages  # same seed, same choice
    # the shape check leaves words without x, X, + or # as the reader chose them
    assert write_handwriting("abc abc\n\ncab", hm, replace(opts, cross_check=1.0))[0] == pages
    by_line = write_handwriting("abc abc\n\ncab", hm, replace(opts, by_word=False))[1]
    assert [ln.text if ln else "" for ln in by_line] == ["abc", "abc", "", "cab"]
    with pytest.raises(GenseqError, match="candidates"):
        write_handwriting("abc", hm, WriteOptions(candidates=0))
    with pytest.raises(GenseqError, match="not found"):
        write_handwriting("abc", hm, WriteOptions(candidates=2, recognizer=tmp_path / "none.pt", unprimed=True))
    # A handwriting model is not a recognizer: one clear error.
    f = tmp_path / "hand.pt"
    save_checkpoint(f, kind="handwriting", config=config.to_dict(), meta={}, model_state=hm.model.state_dict())
    r = _invoke("write", "abc", "-m", f, "--recognizer", f, "-o", tmp_path / "o.svg", "--no-style")
    assert r.exit_code == 1 and "not a recognizer model" in r.output and "Traceback" not in r.output
    r = _invoke("write", "abc", "-m", f, "-k", 0, "-o", tmp_path / "o.svg")
    assert r.exit_code == 2 and "--candidates" in r.output
    r = _invoke("write", "abc", "-m", f, "-k", 1, "--recognizer", trained / "best.pt", "-o", tmp_path / "o.svg")
    assert r.exit_code == 1 and "--candidates 2 or more" in r.output
    r = _invoke("write", "abc", "-m", f, "-k", 1, "--by-line", "-o", tmp_path / "o.svg")
    assert r.exit_code == 1 and "--by-line chooses among candidates" in r.output


def test_a_line_is_drawn_again_only_when_none_of_its_candidates_passed(monkeypatch):
    import genseq.hand.api as write_mod
    calls, seen = [], []

    def fake(model, texts, opts, prime, words=None, progress=None):
        calls.append(list(texts))
        seen.append(words)
        # First call: every 'ab' candidate stalls, one 'ca' candidate is fine; later calls: all fine.
        return [HandLine(t, np.zeros((4, 3), np.float32), None,
                         "ok" if len(calls) > 1 or (t == "ca" and j % 2) else "stalled")
                for j, t in enumerate(texts)]

    monkeypatch.setattr(write_mod, "sample_synthesis", fake)
    from genseq.hand.sample import HandSampleOptions
    score = object()  # a words.Scorer: handed on to every draw, the re-draws too
    got = write_mod._candidates(["ab", "ca"], 2, SimpleNamespace(model=None), HandSampleOptions(seed=1), None, score)
    assert calls == [["ab", "ab", "ca", "ca"], ["ab", "ab"]]  # only the line with no good candidate again
    assert seen == [(2, score), (2, score)]
    assert [(c.text, c.status, c.tries) for c in got] == [("ab", "ok", 2), ("ab", "ok", 2),
                                                          ("ca", "stalled", 1), ("ca", "ok", 1)]


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
def test_two_processes_train_the_recognizer(strokes_h5, tmp_path):
    """Under torchrun the model is wrapped in DDP: the task must go through its forward."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "genseq", "train", "recognizer",
           str(strokes_h5), "--out", str(tmp_path / "d"), "--hidden", "8", "--layers", "1", "--batch", "4",
           "--max-steps", "3", "--eval-every", "3", "--device", "cpu", "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert load_checkpoint(tmp_path / "d" / "last.pt", kind="recognizer")["train"]["step"] == 3


def test_oversampling_rare_characters_when_training_the_reader(strokes_h5, tmp_path):
    run = tmp_path / "over"
    base = ["train", "recognizer", strokes_h5, "-o", run, "--hidden", 8, "--layers", 1, "--batch", 4,
            "--eval-every", 2, "-q"]
    r = _invoke(*base, "--max-steps", 2, "--oversample", ".", "--oversample-factor", 3)
    assert r.exit_code == 0, r.output
    ck = load_checkpoint(run / "last.pt", kind="recognizer")
    rare = sum("." in t for t in TEXTS) * 3  # training lines with a '.'
    assert rare > 0
    assert ck["meta"]["oversample"] == [".", 3]
    assert ck["train"]["task"]["sequences"] == 3 * len(TEXTS) + 2 * rare
    r = _invoke(*base, "--max-steps", 3, "--resume")
    assert r.exit_code == 1 and "cannot resume: --oversample was '.' x3, now off" in r.output
    r = _invoke(*base, "--max-steps", 3, "--oversample", ".", "--oversample-factor", 3, "--resume")
    assert r.exit_code == 0, r.output
    once = tmp_path / "once"  # factor 1: every line once, the same as no --oversample
    r = _invoke(*base[:4], once, *base[5:], "--max-steps", 1, "--oversample", ".", "--oversample-factor", 1)
    assert r.exit_code == 0, r.output
    assert load_checkpoint(once / "last.pt", kind="recognizer")["meta"]["oversample"] is None


def test_strokes_in_other_units_are_read_at_the_model_scale(trained, strokes_h5, tmp_path):
    # The same lines with every offset x10 and other units: eval and fine-tuning
    # bring them to the model's units (data.data_scale), so they read the same.
    rng = np.random.default_rng(0)
    big = tmp_path / "big.h5"
    splits = {}
    for s in ("train", "val", "test"):
        splits[s] = []
        for j in range(3):
            for i, t in enumerate(TEXTS):
                p = _line(t, rng)
                p[:, :2] *= 10
                splits[s].append(Sample(f"{s}{i}{j}", t, p))
    write_strokes(big, splits, source="test", terms="none", units="px/10")
    from genseq.reader import load_recognizer_file
    from genseq.strokes.batches import data_scale
    reader, meta = load_recognizer_file(trained / "best.pt")
    # a model file of the data's own units (here: no "scale" in its meta, as in files before it): 1
    assert data_scale(reader.config, big, {"units": "px/10"}) == 1.0
    a = json.loads(_invoke("eval", "recognizer", trained / "best.pt", strokes_h5, "--json").output)
    b = json.loads(_invoke("eval", "recognizer", trained / "best.pt", big, "--json").output)
    assert a["cer"] == b["cer"] and abs(a["nll_per_char"] - b["nll_per_char"]) < 1e-4
    run = tmp_path / "ft"
    ft = ["train", "recognizer", big, "-o", run, "--init", trained / "best.pt", "--batch", 4, "--eval-every", 2,
          "-q", "--lr", 1e-9]
    assert _invoke(*ft, "--max-steps", 2).exit_code == 0
    ck = load_checkpoint(run / "last.pt", kind="recognizer")
    assert ck["meta"]["scale"] == pytest.approx(0.1, rel=0.05)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["cer"] for r in rows if "cer" in r][-1] < 0.2  # it still reads (without the scale it would not)
    r = _invoke(*ft[:5], "--batch", 4, "--eval-every", 2, "-q", "--max-steps", 3, "--resume")
    assert r.exit_code == 0, r.output
    assert load_checkpoint(run / "last.pt", kind="recognizer")["meta"]["scale"] == ck["meta"]["scale"]
