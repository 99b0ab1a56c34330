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

Loading trusts nothing in the file, and nothing it claims is allocated before
it is checked: the zip's members must be stored, not compressed (no zip
bombs); every tensor must be a plain view of as many stored bytes as its shape
claims (no stride-0 or overlapping views), checked from shapes and strides
before any value is read; `load_model` then compares the weights with the
shapes the config implies (a meta-device skeleton, MAX_PARAMETERS) and checks
the meta (vocabulary, scale) before it builds the model.
"""
from __future__ import annotations

import json
import math
import numbers
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any, Iterator

import torch

from .atomic import atomic_open
from .configs import PAIR_MAX  # meta.scale stays within the same factor of 1 as a config's pairs
from .errors import GenseqError, first_line, shown

FORMAT = "genseq"
VERSION = 1

# The most weights (parameters) a model file may hold or its config may imply:
# 200 million is 800 MB as fp32, some 30 times the largest bundled model
# (shakespeare.pt: 6.4 million). A file over the limit is refused before
# anything is built (README, "Bad input and failure").
MAX_PARAMETERS = 200_000_000
# The most layers a config may ask for: building even an empty (meta-device)
# skeleton of the model takes time per layer.
MAX_LAYERS = 1000


def check_new_model(build, layers) -> None:
    """Refuse, before any weight is allocated, a model to be trained whose
    config asks for more than MAX_LAYERS layers or MAX_PARAMETERS weights (it
    could never be loaded again). build(): makes the module; it runs on the
    meta device, which holds shapes but no values."""
    if isinstance(layers, numbers.Integral) and layers > MAX_LAYERS:
        raise GenseqError(f"--layers {layers:,} is too many: genseq builds at most {MAX_LAYERS:,}")
    try:
        with torch.device("meta"):
            count = sum(p.numel() for p in build().parameters())
    except (RuntimeError, TypeError, OverflowError) as err:
        if "overflow" not in str(err).lower():
            raise
        count = None  # a size beyond int64: no tensor can have it
    if count is None or count > MAX_PARAMETERS:
        has = "more weights than a tensor can count" if count is None else f"{count:,} weights"
        raise GenseqError(f"a model of these sizes has {has}; genseq builds at most "
                          f"{MAX_PARAMETERS:,} (use a smaller --hidden, --layers, --embed or --mixtures)")


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


def _invalid(path, reason: str) -> GenseqError:
    return GenseqError(f"{path} is not a valid genseq model file: {reason}")


def _check_zip(path: Path, fh, size: int) -> None:
    """Refuse a zip whose members could inflate beyond the file, before torch reads any.

    torch.save stores every member uncompressed; a compressed member (a zip
    bomb: a megabyte that inflates to gigabytes) never comes from genseq.
    """
    try:
        with zipfile.ZipFile(fh) as zf:
            members = zf.infolist()
    except Exception as err:  # noqa: BLE001  BadZipFile, struct.error, ... on a damaged directory
        raise GenseqError(f"{path} is not a readable genseq model file (truncated or corrupted?): "
                          f"{str(err).splitlines()[0][:120] if str(err) else type(err).__name__}") from None
    total = 0
    for m in members:
        name = _name(m.filename)
        if m.compress_type != zipfile.ZIP_STORED:
            raise _invalid(path, f"its member {name} is compressed (torch.save never compresses; "
                                 f"it would inflate to {m.file_size:,} bytes)")
        if m.file_size != m.compress_size or m.header_offset + m.compress_size > size:
            raise _invalid(path, f"its member {name} claims {m.file_size:,} bytes that the file does not hold")
        total += m.file_size
    if total > size:
        raise _invalid(path, f"its members claim {total:,} bytes in a file of {size:,}")


def _tensors(obj) -> Iterator[tuple[tuple, torch.Tensor]]:
    """(where, tensor) for every tensor in a loaded payload, `where` a linked
    (key, parent) pair for `_where`; each container is visited once (a pickle
    can reference one list from many places)."""
    seen: set[int] = set()
    stack: list[tuple[Any, tuple]] = [(obj, ())]
    while stack:
        o, where = stack.pop()
        if isinstance(o, torch.Tensor):
            yield where, o
        elif isinstance(o, (dict, list, tuple)) and id(o) not in seen:
            seen.add(id(o))
            items = o.items() if isinstance(o, dict) else enumerate(o)
            stack.extend((v, (k, where)) for k, v in items)


def _where(where: tuple) -> str:
    """A dotted name from `_tensors`' linked keys, e.g. model.decoder.weight."""
    keys = []
    while where and len(keys) < 8:
        key, where = where
        keys.append(_name(key, 40))
    return ".".join(reversed(keys))


def _shape(shape) -> str:
    if len(shape) > 8:
        return f"({', '.join(str(n) for n in shape[:8])}, ... {len(shape)} dimensions)"
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _name(key, limit: int = 80) -> str:
    """A name read from the file (a key, a zip member) for a one-line message."""
    if not isinstance(key, str):
        return shown(key)
    key = key[:limit]
    return key if key.isprintable() else repr(key)


def _tensor_problem(t: torch.Tensor) -> str | None:
    """Why a loaded tensor is not a plain view of its stored bytes, or None.

    Only metadata is read (layout, shape, strides, offset, storage size):
    a stride-0 tensor of shape (10^6, 10^6) over 4 stored values is refused
    here without its 10^12 values ever being made.
    """
    if t.layout != torch.strided or t.is_quantized or t.is_nested:
        return "is not a dense tensor"
    if t.device.type != "cpu":
        return f"has no stored values (a {t.device.type} tensor)"
    shape, stride = tuple(t.shape), t.stride()
    if any(st < 0 for st in stride):
        return f"has a negative stride {stride}"
    for n, st in zip(shape, stride):
        if st == 0 and n > 1:
            return (f"has stride 0 on a dimension of size {n} (shape {_shape(shape)}): "
                    f"it repeats stored values instead of storing them")
    numel = math.prod(shape)
    if numel == 0:
        return None
    itemsize, stored = t.element_size(), t.untyped_storage().nbytes()
    extent = t.storage_offset() + sum((n - 1) * st for n, st in zip(shape, stride)) + 1
    if extent * itemsize > stored:
        return f"of shape {_shape(shape)} reaches beyond its {stored:,} stored bytes"
    if numel * itemsize > stored:
        return (f"of shape {_shape(shape)} has more values than its {stored:,} stored bytes hold "
                f"(overlapping strides {stride})")
    return None


def _check_tensors(path: Path, payload: dict, size: int) -> None:
    total = 0
    for where, t in _tensors(payload):
        problem = _tensor_problem(t)
        if problem:
            raise _invalid(path, f"the tensor {_where(where)} {problem}")
        total += t.numel() * t.element_size()
    # Every tensor genseq saves has its own storage; tied weights saved by plain
    # torch.save share one (hence the 2). More than that: one stored block
    # named many times over, which copying (fp16 -> fp32) would multiply.
    if total > 2 * size + (1 << 20):
        raise _invalid(path, f"its tensors claim {total:,} bytes of values from a file of {size:,} bytes")
    count = sum(t.numel() for t in payload["model"].values())
    if count > MAX_PARAMETERS:
        raise _invalid(path, f"it has {count:,} weights; genseq loads at most {MAX_PARAMETERS:,}")


def _load(path: Path, fh):
    """torch.load(weights_only=True), its failures as one-line GenseqErrors."""
    try:
        return torch.load(fh, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch names the callable either way: "Unsupported global: GLOBAL os.remove" or
        # "Trying to load unsupported GLOBAL posix.system whose module posix is blocked"
        found = re.search(r"[Uu]nsupported (?:global: )?GLOBAL ([\w.]+)", str(err))
        what = f"it asks to run {found.group(1)}" if found else "it holds objects other than tensors and plain data"
        raise GenseqError(f"{path} is not a safe genseq model file: refused to load, {what}") from None
    except Exception as err:  # noqa: BLE001  a damaged pickle fails in many ways (IndexError, KeyError, ...);
        # weights_only means none of them ran code from the file
        if re.search(r"not resizable|out of bounds for storage", str(err)):
            # torch's own check (Tensor.set_) of a shape and strides that reach past the stored values
            raise _invalid(path, "a tensor's shape and strides reach beyond its stored data") from None
        raise GenseqError(f"{path} is not a readable genseq model file (truncated or corrupted?): "
                          f"{str(err).splitlines()[0][:120] if str(err) else type(err).__name__}") from None


def load_checkpoint(path: str | os.PathLike, kind: str | None = None) -> dict:
    """Read and validate a model file; always maps tensors to the CPU.

    Raises GenseqError for anything that is not a readable genseq file of the
    expected kind (missing, truncated, corrupted, crafted, other version).
    """
    path = Path(path)
    if not path.is_file():
        if path.is_dir():
            raise GenseqError(f"{path} is a folder, not a model file")
        raise GenseqError(f"{path} is not a regular file, not a model file" if path.exists()
                          else f"model file not found: {path}")
    # One open file for the checks and the load: what is checked is what is read.
    with open(path, "rb") as fh:
        if fh.read(4) != b"PK\x03\x04":  # torch.save writes a zip archive
            raise GenseqError(f"{path} is not a genseq model file")
        size = os.fstat(fh.fileno()).st_size
        _check_zip(path, fh, size)
        fh.seek(0)
        payload = _load(path, fh)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise GenseqError(f"{path} is not a genseq model file")
    if payload.get("version") != VERSION:
        raise GenseqError(f"{path} has format version {shown(payload.get('version'))}; "
                          f"this genseq reads version {VERSION}")
    for key in ("kind", "config", "meta", "model"):
        if key not in payload:
            raise GenseqError(f"{path} is damaged: '{key}' is missing")
    model = payload["model"]
    if not (isinstance(model, dict) and all(isinstance(v, torch.Tensor) for v in model.values())
            and isinstance(payload["config"], dict) and isinstance(payload["meta"], dict)):
        raise GenseqError(f"{path} is damaged: its weights or settings are not what a genseq file holds")
    if kind is not None and payload["kind"] != kind:
        raise GenseqError(f"{path} holds a {_name(payload['kind'], 40)} model, not a {kind} model")
    # Shapes, strides and sizes first, from the tensors' metadata alone: nothing
    # below reads a value (isfinite, float) of a tensor that is not backed by
    # as many stored bytes as it claims.
    _check_tensors(path, payload, size)
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
    then its weights). Returns (module in eval mode, ckpt).

    Nothing is built for real before `check_model` has compared the file's
    weights and meta with what its config implies.
    """
    if path is None or str(path) == "default":
        path = bundled_path(default)
    ckpt = load_checkpoint(path, kind=kind)
    check_model(path, ckpt, build)
    try:
        model = build(ckpt)
        model.load_state_dict(ckpt["model"])
    except (KeyError, TypeError, ValueError, RuntimeError, GenseqError) as err:
        raise GenseqError(f"{path} is damaged or from an incompatible genseq: "
                          f"{str(err).splitlines()[0][:160] if str(err) else type(err).__name__}") from None
    return model.eval(), ckpt


def load_checked(path, kind: str, build) -> dict:
    """`load_checkpoint`, then `check_model`: a file whose config and weights
    agree, before anything builds its model for real (--init, --resume)."""
    ckpt = load_checkpoint(path, kind=kind)
    check_model(path, ckpt, build)
    return ckpt


def check_model(path, ckpt: dict, build) -> None:
    """Check a loaded file (`load_checkpoint`) against its own config, allocating
    no weights: call it before `build(ckpt)` builds the module for real.

    The config is checked (its sizes, and whatever `build` and the config's
    from_dict refuse) by building the module on the meta device, which holds
    shapes but no values; then its weight count against MAX_PARAMETERS, every
    weight's name, shape and dtype against the file's, and the meta that loading
    and sampling rely on (vocabulary, scale). Raises GenseqError.
    """
    layers = ckpt["config"].get("layers")
    if isinstance(layers, numbers.Integral) and not isinstance(layers, bool) and layers > MAX_LAYERS:
        raise _invalid(path, f"its config asks for {shown(int(layers))} layers; "
                             f"genseq builds at most {MAX_LAYERS:,}")
    try:
        with torch.device("meta"):
            skeleton = build(ckpt)
    except GenseqError as err:  # the config's own checks (from_dict, __post_init__)
        raise _invalid(path, first_line(err)) from None
    except (KeyError, TypeError, ValueError, RuntimeError, OverflowError) as err:
        raise GenseqError(f"{path} is damaged or from an incompatible genseq: "
                          f"{str(err).splitlines()[0][:160] if str(err) else type(err).__name__}") from None
    _check_weights(path, ckpt["model"], skeleton.state_dict())
    _check_meta(path, ckpt["kind"], ckpt["config"], ckpt["meta"])


def _check_weights(path, found: dict, expected: dict) -> None:
    """The file's weights against the (meta-device) state dict its config implies."""
    implied = sum(t.numel() for t in expected.values())
    if implied > MAX_PARAMETERS:
        raise _invalid(path, f"its config implies {implied:,} weights; genseq loads at most {MAX_PARAMETERS:,}")

    def listed(names):
        names = sorted(_name(n) for n in names)
        return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")

    missing = expected.keys() - found.keys()
    if missing:
        raise _invalid(path, f"weights its config needs are missing: {listed(missing)}")
    extra = found.keys() - expected.keys()
    if extra:
        raise _invalid(path, f"it has weights its config does not use: {listed(extra)}")
    for name, want in expected.items():
        got = found[name]
        if tuple(got.shape) != tuple(want.shape):
            raise _invalid(path, f"the weight {name} should have shape {_shape(want.shape)} for its config, "
                                 f"found {_shape(got.shape)}")
        if want.is_floating_point() and not got.is_floating_point():
            raise _invalid(path, f"the weight {name} holds {got.dtype} values, not floating point")


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _check_meta(path, kind: str, config: dict, meta: dict) -> None:
    """The parts of a file's meta that loading and sampling rely on."""
    if kind == "text":
        encoding = meta.get("encoding", "utf-8")
        if not isinstance(encoding, str):
            raise _invalid(path, "meta.encoding is not a string")
        if encoding not in ("utf-8", "bytes"):  # what genseq data text writes and the text code reads
            raise _invalid(path, f"meta.encoding must be utf-8 or bytes, not {shown(encoding)}")
        vocab = meta.get("vocab")
        try:
            tokens = json.loads(vocab) if isinstance(vocab, str) else None
        except (ValueError, RecursionError):
            tokens = None
        if not isinstance(tokens, list):
            raise _invalid(path, "meta.vocab is missing or not a JSON list of tokens")
        if len(tokens) != config.get("vocab_size"):
            raise _invalid(path, f"meta.vocab has {len(tokens):,} tokens but its config's vocab_size "
                                 f"is {shown(config.get('vocab_size'))}")
        if encoding == "bytes":
            ok = all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t <= 255 for t in tokens)
            what = "byte values 0-255"
        else:
            ok = all(isinstance(t, str) and len(t) == 1 and not 0xD800 <= ord(t) < 0xE000 for t in tokens)
            what = "single characters that UTF-8 can encode"
        if not ok:
            raise _invalid(path, f"meta.vocab holds tokens other than {what}")
        if len(set(tokens)) != len(tokens):
            raise _invalid(path, "meta.vocab repeats a token")
    else:
        scale = meta.get("scale", 1.0)
        if not (_is_number(scale) and 1 / PAIR_MAX <= scale <= PAIR_MAX):
            raise _invalid(path, f"meta.scale must be a number from {1 / PAIR_MAX:g} to {PAIR_MAX:g}, "
                                 f"not {shown(scale)}")
        units = meta.get("units", "")
        if units is not None and not isinstance(units, str):
            raise _invalid(path, "meta.units is not a string")


def export_model(src: str | os.PathLike, dst: str | os.PathLike, half: bool = True) -> dict:
    """Write a compact copy of a model file: weights only (no optimizer or
    training state), fp16 with `half`. Returns the copy's meta."""
    ckpt = load_checkpoint(src)
    meta = {k: v for k, v in ckpt["meta"].items()}
    meta["exported_from"] = Path(src).name
    save_checkpoint(dst, kind=ckpt["kind"], config=ckpt["config"], meta=meta, model_state=ckpt["model"], half=half)
    return meta
