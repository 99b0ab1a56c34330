"""Data-parallel training: two CPU processes under torchrun (gloo) on a tiny corpus."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genseq.checkpoint import load_checkpoint, save_checkpoint
from genseq.text.task import TextTask
from genseq.train import TrainOptions, train
from genseq.train.dist import weights_digest

pytestmark = pytest.mark.slow  # torchrun: two processes per run

TINY = dict(layers=1, hidden=16, dropout=0.1)
STEPS = 20


def _torchrun(corpus, out, *extra):
    """`torchrun --standalone --nproc_per_node=2 -m genseq train text ...`, 2 streams per process."""
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "genseq", "train", "text", str(corpus),
           "--out", str(out), "--layers", "1", "--hidden", "16", "--dropout", "0.1", "--batch", "2",
           "--seq-len", "16", "--max-steps", str(STEPS), "--eval-every", "10", "--warmup", "3", "--lr", "0.01",
           "--device", "cpu", "--quiet", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)


def _metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture
def init(tmp_path, corpus):
    """One set of starting weights for the distributed and the single-process run."""
    torch.manual_seed(0)
    task = TextTask(corpus, TINY, batch=4, steps=16)
    path = tmp_path / "init.pt"
    save_checkpoint(path, kind="text", config=task.config.to_dict(), meta=task.meta(), model_state=task.model.state_dict())
    return path


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
def test_two_processes_train_like_one_and_resume_exactly(tmp_path, corpus, init):
    run = _torchrun(corpus, tmp_path / "dist", "--init", str(init))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "batch 2 per process x 2 processes = 4 per step" in run.stderr
    assert run.stderr.count("stopped (max_steps) at step 20") == 1  # only rank 0 talks
    assert sorted(p.name for p in (tmp_path / "dist").iterdir()) == ["best.pt", "last.pt", "loss.svg",
                                                                     "metrics.jsonl"]
    dist_metrics = _metrics(tmp_path / "dist")
    assert [r["step"] for r in dist_metrics] == [10, 10, 20, 20]  # written once, by rank 0

    # Both ranks reported the weights they ended with; they are the saved ones.
    ck = load_checkpoint(tmp_path / "dist" / "last.pt")
    assert ck["train"]["world"] == 2 and ck["train"]["step"] == STEPS
    digests = [r["weights"] for r in ck["train"]["ranks"]]
    assert digests[0] == digests[1] == weights_digest(ck["model"])

    # One process with the same total batch (4 streams) reads the same text per
    # step; only dropout masks differ, so the curves agree within that noise.
    task = TextTask(corpus, TINY, batch=4, steps=16)
    train(task, TrainOptions(out=tmp_path / "single", max_steps=STEPS, eval_every=10, warmup=3, lr=0.01,
                             device="cpu", progress=False, init=init))
    single = _metrics(tmp_path / "single")
    for a, b in zip(dist_metrics, single):
        assert a["step"] == b["step"]
        key = "val_loss" if "val_loss" in a else "train_loss"
        assert abs(a[key] - b[key]) < 0.02, (a, b)

    # Stop a distributed run after its first step (--max-time 0), resume it:
    # every rank gets back its own streams, hidden state and dropout RNG, so the
    # result is bitwise the uninterrupted run's.
    part = tmp_path / "part"
    run = _torchrun(corpus, part, "--init", str(init), "--max-time", "0")
    assert run.returncode == 0, run.stderr[-3000:]
    assert load_checkpoint(part / "last.pt")["train"]["step"] == 1
    run = _torchrun(corpus, part, "--resume")
    assert run.returncode == 0, run.stderr[-3000:]
    resumed = load_checkpoint(part / "last.pt")
    assert resumed["train"]["step"] == STEPS
    for k, v in ck["model"].items():
        assert torch.equal(v, resumed["model"][k]), k


def test_shards_cover_the_single_process_streams(corpus):
    """Streams of rank r are streams r*B ... of the B*world streams of one process."""
    whole = TextTask(corpus, TINY, batch=4, steps=16)
    parts = [TextTask(corpus, TINY, batch=2, steps=16) for _ in range(2)]
    for rank, t in enumerate(parts):
        t.shard(rank, 2)
    for _ in range(3):
        assert torch.equal(whole.train_batch("cpu"), torch.cat([t.train_batch("cpu") for t in parts]))


def test_handwriting_shards_take_every_world_th_batch(tmp_path):
    import numpy as np

    from genseq.hand.task import HandTask, config_from_data
    from genseq.strokes import Sample, write_strokes
    rng = np.random.default_rng(0)

    def line(i):
        p = rng.normal(size=(5 + i, 3)).astype(np.float32)
        p[:, 2] = 0
        p[-1, 2] = 1
        return Sample(f"s{i}", "ab", p)

    path = tmp_path / "s.h5"
    write_strokes(path, {"train": [line(i) for i in range(11)], "val": [line(i) for i in range(2)]},
                  source="test", terms="none", units="px")
    config = config_from_data(path, "prediction", hidden=4, layers=1, mixtures=1, window=1)
    whole = HandTask(path, config, batch=2)
    parts = [HandTask(path, config, batch=2) for _ in range(2)]
    for rank, t in enumerate(parts):
        t.shard(rank, 2)
    # 6 batches per epoch (the last one short): 3 each, interleaved, then the next epoch together.
    seen = [whole.train_batch("cpu").index for _ in range(12)]
    mine = [[t.train_batch("cpu").index for _ in range(6)] for t in parts]
    assert mine[0] == seen[0:6:2] + seen[6:12:2] and mine[1] == seen[1:6:2] + seen[7:12:2]
    assert [t.sources[0].epoch for t in parts] == [1, 1]
