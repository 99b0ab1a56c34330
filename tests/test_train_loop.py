import json

import pytest
import torch

from genseq.checkpoint import load_checkpoint
from genseq.errors import GenseqError
from genseq.text.task import TextTask
from genseq.train import TrainOptions, train

TINY = dict(layers=1, hidden=16, dropout=0.1)


def _run(corpus, out, steps, **kw):
    torch.manual_seed(0)
    task = TextTask(corpus, TINY, batch=4, steps=16)
    # On the CPU, where resumed runs are bit-identical (CUDA kernels are not bit-reproducible).
    opts = TrainOptions(out=out, max_steps=steps, eval_every=kw.pop("eval_every", 5), warmup=3,
                        progress=False, lr=kw.pop("lr", 0.01), device="cpu", **kw)
    return task, train(task, opts)


def test_training_lowers_loss_and_writes_run_files(tmp_path, corpus):
    task, res = _run(corpus, tmp_path / "run", 30, eval_every=10)
    recs = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    vals = [r["val_loss"] for r in recs if "val_loss" in r]
    assert len(vals) == 3 and vals[-1] < vals[0]
    for name in ("last.pt", "best.pt", "metrics.jsonl", "loss.svg"):
        assert (tmp_path / "run" / name).exists()
    best = load_checkpoint(tmp_path / "run" / "best.pt", kind="text")
    assert "train" not in best and best["meta"]["best_val"] == min(vals)


def test_sigint_saves_and_resume_equals_uninterrupted(tmp_path, corpus, monkeypatch):
    import os
    import signal
    _, full = _run(corpus, tmp_path / "full", 20)
    torch.manual_seed(0)
    task = TextTask(corpus, TINY, batch=4, steps=16)
    real = task.train_batch

    def interrupting(device):  # Ctrl-C arrives during step 13; the loop stops after it
        if task.position == 12:
            os.kill(os.getpid(), signal.SIGINT)
        return real(device)

    monkeypatch.setattr(task, "train_batch", interrupting)
    opts = TrainOptions(out=tmp_path / "part", max_steps=20, eval_every=5, warmup=3, progress=False, lr=0.01,
                        device="cpu")
    res = train(task, opts)
    assert res.stopped == "interrupted" and res.step == 13
    torch.manual_seed(123)  # must not matter: the RNG state comes from the checkpoint
    task = TextTask(corpus, TINY, batch=4, steps=16)
    train(task, TrainOptions(**{**opts.__dict__, "resume": True}))
    a = load_checkpoint(tmp_path / "full" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "part" / "last.pt")["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    steps = [json.loads(l)["step"] for l in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps)
    # the metrics too: the first loss after the resume averages the steps since the last report, as in one run
    logged = [[(r["step"], r.get("train_loss"), r.get("val_loss")) for r in map(json.loads, open(
        tmp_path / run / "metrics.jsonl"))] for run in ("full", "part")]
    assert logged[0] == logged[1] and sum(r[1] is not None for r in logged[0]) == 2


def test_refuses_to_overwrite_or_resume_mismatch(tmp_path, corpus):
    _run(corpus, tmp_path / "run", 5)
    with pytest.raises(GenseqError, match="already holds a run"):
        _run(corpus, tmp_path / "run", 5)
    task = TextTask(corpus, dict(layers=1, hidden=24), batch=4, steps=16)
    with pytest.raises(GenseqError, match="configuration differs"):
        train(task, TrainOptions(out=tmp_path / "run", max_steps=6, resume=True, progress=False))
    with pytest.raises(GenseqError, match="no checkpoint"):
        train(task, TrainOptions(out=tmp_path / "empty", max_steps=6, resume=True, progress=False))


def test_resume_with_another_schedule_says_so(tmp_path, corpus, capsys):
    _run(corpus, tmp_path / "run", 6)
    capsys.readouterr()
    _run(corpus, tmp_path / "run", 6, resume=True)
    assert "other options" not in capsys.readouterr().err  # same flags: nothing to say
    task, res = _run(corpus, tmp_path / "run", 12, resume=True, lr=0.02)
    err = capsys.readouterr().err
    assert res.step == 12
    assert "resumed at step 6 with other options (--max-steps 6 -> 12, --lr 0.01 -> 0.02)" in err
    _run(corpus, tmp_path / "run", 10, resume=True)
    assert "resumed at step 12, already at --max-steps 10: nothing to train" in capsys.readouterr().err


def test_resume_with_another_weight_decay_applies_it(tmp_path, corpus, capsys):
    for out in ("a", "b"):
        _run(corpus, tmp_path / out, 4)
    capsys.readouterr()
    _run(corpus, tmp_path / "a", 8, resume=True, weight_decay=0.5)
    assert "(--max-steps 4 -> 8, --weight-decay 0.0 -> 0.5)" in capsys.readouterr().err
    _run(corpus, tmp_path / "b", 8, resume=True)
    a, b = (load_checkpoint(tmp_path / o / "last.pt") for o in ("a", "b"))
    assert a["train"]["optimizer"]["param_groups"][0]["weight_decay"] == 0.5
    assert b["train"]["optimizer"]["param_groups"][0]["weight_decay"] == 0.0
    assert any(not torch.equal(a["model"][k], b["model"][k]) for k in a["model"])  # it changed the training


def test_a_run_folder_in_use_is_refused(tmp_path, corpus):
    from genseq.train.loop import run_folder
    with run_folder(tmp_path / "run"):  # another run holds it
        with pytest.raises(GenseqError, match="in use by another run"):
            _run(corpus, tmp_path / "run", 2)
    assert not (tmp_path / "run" / "last.pt").exists()
    _run(corpus, tmp_path / "run", 2)  # free again once that run has ended
    assert (tmp_path / "run" / "last.pt").exists()


def test_fine_tune_from_init(tmp_path, corpus):
    _run(corpus, tmp_path / "base", 10)
    task, res = _run(corpus, tmp_path / "ft", 3, init=tmp_path / "base" / "best.pt")
    assert res.step == 3


def test_non_finite_loss_skips_update_and_restores(tmp_path, corpus, monkeypatch):
    torch.manual_seed(0)
    task = TextTask(corpus, TINY, batch=4, steps=16)
    real_loss = task.loss
    calls = {"n": 0}

    def flaky(batch):
        loss, n = real_loss(batch)
        calls["n"] += 1
        if 8 <= calls["n"] < 14:
            return loss * float("nan"), n
        return loss, n

    monkeypatch.setattr(task, "loss", flaky)
    res = train(task, TrainOptions(out=tmp_path / "r", max_steps=12, eval_every=5, warmup=2,
                                   progress=False, nan_patience=3))
    ck = load_checkpoint(tmp_path / "r" / "last.pt")
    assert ck["train"]["lr_scale"] < 1.0
    assert all(torch.isfinite(v).all() for v in ck["model"].values())
    assert res.step == 12
