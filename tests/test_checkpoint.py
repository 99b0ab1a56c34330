import pickle

import pytest
import torch

from genseq.checkpoint import load_checkpoint, save_checkpoint
from genseq.errors import GenseqError


class Evil:
    def __reduce__(self):
        import os
        return (os.system, ("echo pwned > /tmp/genseq_pwned",))


def _save(path, **kw):
    save_checkpoint(path, kind="text", config={"a": 1}, meta={"m": "x"},
                    model_state={"w": torch.randn(3, 3)}, **kw)


def test_round_trip_half_loads_as_float(tmp_path):
    p = tmp_path / "m.pt"
    _save(p, half=True)
    ck = load_checkpoint(p, kind="text")
    assert ck["model"]["w"].dtype == torch.float32 and ck["config"] == {"a": 1}


def test_crafted_pickle_is_refused_and_not_executed(tmp_path):
    import os
    target = "/tmp/genseq_pwned"
    if os.path.exists(target):
        os.remove(target)
    p = tmp_path / "evil.pt"
    torch.save({"format": "genseq", "version": 1, "kind": "text", "config": {}, "meta": {},
                "model": {}, "payload": Evil()}, p)
    with pytest.raises(GenseqError, match="not a safe genseq model file: refused to load, it asks to run "
                                          r"(os|posix)\.system"):
        load_checkpoint(p)
    assert not os.path.exists(target)
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(GenseqError):
        load_checkpoint(raw)
    assert not os.path.exists(target)


def test_truncated_other_kind_version_and_foreign(tmp_path):
    p = tmp_path / "m.pt"
    _save(p)
    data = p.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(GenseqError, match="truncated or corrupted"):
        load_checkpoint(tmp_path / "cut.pt")
    with pytest.raises(GenseqError, match="holds a text model, not a handwriting model"):
        load_checkpoint(p, kind="handwriting")
    torch.save({"format": "genseq", "version": 99}, tmp_path / "v.pt")
    with pytest.raises(GenseqError, match="version 99"):
        load_checkpoint(tmp_path / "v.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "f.pt")
    with pytest.raises(GenseqError, match="not a genseq model file"):
        load_checkpoint(tmp_path / "f.pt")
    with pytest.raises(GenseqError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_non_finite_weights_are_never_saved(tmp_path):
    p = tmp_path / "m.pt"
    _save(p)
    before = p.read_bytes()
    with pytest.raises(GenseqError, match="non-finite"):
        save_checkpoint(p, kind="text", config={}, meta={}, model_state={"w": torch.tensor([float("nan")])})
    assert p.read_bytes() == before
    assert not list(tmp_path.glob(".*tmp"))


def test_non_finite_weights_in_a_file_are_refused_on_loading(tmp_path):
    # A file save_checkpoint would not write (edited or damaged): refused with a
    # one-line reason instead of writing NaN strokes or text later.
    p = tmp_path / "m.pt"
    _save(p)
    payload = torch.load(p, weights_only=True)
    payload["model"] = {k: torch.full_like(v, float("inf")) if v.is_floating_point() else v
                        for k, v in payload["model"].items()}
    torch.save(payload, p)
    with pytest.raises(GenseqError, match=r"damaged: non-finite weights \("):
        load_checkpoint(p)
    with pytest.raises(GenseqError, match="beyond its range"):  # fp16 export of a weight over 65504
        save_checkpoint(tmp_path / "h.pt", kind="text", config={}, meta={}, model_state={"w": torch.tensor([7e4])},
                        half=True)
    assert not (tmp_path / "h.pt").exists()


def test_export_strips_training_state_and_halves(tmp_path):
    from genseq.checkpoint import export_model
    p = tmp_path / "run.pt"
    _save(p, train_state={"optimizer": {"x": torch.zeros(3)}, "step": 5})
    out = tmp_path / "small.pt"
    export_model(p, out)
    ck = load_checkpoint(out, kind="text")
    assert "train" not in ck and ck["meta"]["exported_from"] == "run.pt"
    assert torch.load(out, weights_only=True)["model"]["w"].dtype == torch.float16
    assert out.stat().st_size < p.stat().st_size
