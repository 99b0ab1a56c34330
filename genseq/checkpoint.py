"""Model files: one versioned format for checkpoints and bundled models.

A file is a plain dict saved with `torch.save` and read back with
`torch.load(weights_only=True)`, which only rebuilds tensors and primitive
containers: loading never executes code from the file (a crafted pickle is
refused). Layout (format "genseq", version 1):

    {"format": "genseq", "version": 1,
     "kind": "text" | "handwriting" | "recognizer",
     "config": {...},        # the model's frozen dataclass as plain types
     "meta": {...},          # vocabulary/alphabet, data description, scores
     "model": state_dict,    # tensors (fp32, or fp16 in bundled files)
     "train": {...}}         # only in resumable checkpoints: optimizer, step,
                             # RNG states, data position
"""
from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_open
from .errors import GenseqError

FORMAT = "genseq"
VERSION = 1


def save_checkpoint(path: str | os.PathLike, *, kind: str, config: dict, meta: dict,
                    model_state: dict, train_state: dict | None = None,
                    half: bool = False) -> None:
    """Write a model file atomically. `half` stores floating weights as fp16."""
    bad = _non_finite(model_state)
    if bad:
        raise GenseqError(f"refusing to save non-finite weights ({bad[0]})")
    state = {}
    for name, tensor in model_state.items():
        tensor = tensor.detach().cpu()
        if half and tensor.is_floating_point():
            tensor = tensor.half()
            if not torch.isfinite(tensor).all():
                raise GenseqError(f"refusing to save {name} in fp16: a weight is beyond its range (±65504)")
        state[name] = tensor.clone()
    payload: dict[str, Any] = {"format": FORMAT, "version": VERSION, "kind": kind,
                               "config": config, "meta": meta, "model": state}
    if train_state is not None:
        payload["train"] = train_state
    with atomic_open(path, "wb") as fh:
        # Through a Python file, not a name: a failed write (a full disk) is then
        # the file's OSError, which torch keeps as the context of its RuntimeError
        # and atomic_path reports as one line (genseq.atomic.write_failure).
        torch.save(payload, fh)


def _non_finite(tensors: dict) -> list[str]:
    """Names of the floating tensors holding NaN or inf."""
    return [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]


def load_checkpoint(path: str | os.PathLike, kind: str | None = None) -> dict:
    """Read and validate a model file; always maps tensors to the CPU.

    Raises GenseqError for anything that is not a readable genseq file of the
    expected kind (missing, truncated, corrupted, crafted, other version).
    """
    path = Path(path)
    if not path.is_file():
        raise GenseqError(f"model file not found: {path}")
    with open(path, "rb") as fh:
        if fh.read(4) != b"PK\x03\x04":  # torch.save writes a zip archive
            raise GenseqError(f"{path} is not a genseq model file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch names the callable either way: "Unsupported global: GLOBAL os.remove" or
        # "Trying to load unsupported GLOBAL posix.system whose module posix is blocked"
        found = re.search(r"[Uu]nsupported (?:global: )?GLOBAL ([\w.]+)", str(err))
        what = f"it asks to run {found.group(1)}" if found else "it holds objects other than tensors and plain data"
        raise GenseqError(f"{path} is not a safe genseq model file: refused to load, {what}") from None
    except Exception as err:  # noqa: BLE001  a damaged pickle fails in many ways (IndexError, KeyError, ...);
        # weights_only means none of them ran code from the file
        raise GenseqError(f"{path} is not a readable genseq model file (truncated or corrupted?): "
                          f"{str(err).splitlines()[0][:120] if str(err) else type(err).__name__}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise GenseqError(f"{path} is not a genseq model file")
    if payload.get("version") != VERSION:
        raise GenseqError(f"{path} has format version {payload.get('version')}; "
                          f"this genseq reads version {VERSION}")
    for key in ("kind", "config", "meta", "model"):
        if key not in payload:
            raise GenseqError(f"{path} is damaged: '{key}' is missing")
    model = payload["model"]
    if not (isinstance(model, dict) and all(isinstance(v, torch.Tensor) for v in model.values())
            and isinstance(payload["config"], dict) and isinstance(payload["meta"], dict)):
        raise GenseqError(f"{path} is damaged: its weights or settings are not what a genseq file holds")
    if kind is not None and payload["kind"] != kind:
        raise GenseqError(f"{path} holds a {payload['kind']} model, not a {kind} model")
    bad = _non_finite(model)
    if bad:  # save_checkpoint never writes these: the file was damaged or edited
        raise GenseqError(f"{path} is damaged: non-finite weights ({bad[0]}"
                          f"{f' and {len(bad) - 1} more' if len(bad) > 1 else ''})")
    payload["model"] = {k: (v.float() if v.is_floating_point() else v) for k, v in payload["model"].items()}
    return payload


def bundled_path(name: str) -> Path:
    """Path of a model file shipped inside the package (genseq/models/)."""
    from importlib import resources
    path = Path(str(resources.files("genseq.models").joinpath(name)))
    if not path.is_file():
        raise GenseqError(f"the bundled model {name} is not installed with this copy of genseq")
    return path


def load_model(path, kind: str, default: str, build):
    """Load a model file of `kind` (None or "default": the bundled file `default`)
    and rebuild its module with `build(ckpt) -> nn.Module` (config from the file,
    then its weights). Returns (module in eval mode, ckpt)."""
    if path is None or str(path) == "default":
        path = bundled_path(default)
    ckpt = load_checkpoint(path, kind=kind)
    try:
        model = build(ckpt)
        model.load_state_dict(ckpt["model"])
    except (KeyError, TypeError, ValueError, RuntimeError, GenseqError) as err:
        raise GenseqError(f"{path} is damaged or from an incompatible genseq: "
                          f"{str(err).splitlines()[0][:160] if str(err) else type(err).__name__}") from None
    return model.eval(), ckpt


def export_model(src: str | os.PathLike, dst: str | os.PathLike, half: bool = True) -> dict:
    """Write a compact copy of a model file: weights only (no optimizer or
    training state), fp16 with `half`. Returns the copy's meta."""
    ckpt = load_checkpoint(src)
    meta = {k: v for k, v in ckpt["meta"].items()}
    meta["exported_from"] = Path(src).name
    save_checkpoint(dst, kind=ckpt["kind"], config=ckpt["config"], meta=meta, model_state=ckpt["model"], half=half)
    return meta
