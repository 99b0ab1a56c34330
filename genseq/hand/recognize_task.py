"""The recognizer (recognize.py) as a training `Task` for genseq.train.

Same stroke files, the same length-bucketed batches as the handwriting
networks. Each training line is distorted by a random affine map of its
offsets (scale, slant, small rotation) so that the reader does not depend on
one writer's proportions, and so that it reads the synthesis network's
(biased, neater) strokes as well as the data's. The distortion's random
numbers are a function of (seed, epoch, position): resume stays exact.
Loss: CTC negative log-likelihood per character (nats). Held-out: the same,
plus the character error rate of best-path decoding.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_open
from ..errors import GenseqError
from ..strokes import StrokeDataset
from .data import LineStream, affine, affine_maps, data_scale, eval_batches
from .model import pad_texts
from .recognize import Recognizer, RecognizerConfig, ctc_nll, edit_distance, frames, greedy_decode, read_right


def ctc_fits(n_points: int, text: str, stride: int) -> bool:
    """CTC needs a frame per character plus one blank between equal neighbours."""
    repeats = sum(a == b for a, b in zip(text, text[1:]))
    return len(text) > 0 and int(frames(torch.tensor(n_points), stride)) >= len(text) + repeats


def readable(split, cfg: RecognizerConfig, max_points: int | None) -> np.ndarray:
    """Indices of lines the recognizer can learn from: text in its alphabet, alignable, not too long."""
    allowed = set(cfg.alphabet)
    keep = [i for i, (n, text) in enumerate(zip(split.lengths, split.texts))
            if (not max_points or n <= max_points) and set(text) <= allowed and ctc_fits(int(n), text, cfg.stride)]
    return np.asarray(keep, dtype=np.int64)


def distort(points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, 3) offsets -> the same strokes under a random scale, slant and rotation."""
    sx = np.exp(rng.uniform(-0.15, 0.15))
    sy = sx * np.exp(rng.uniform(-0.1, 0.1))
    slant, angle = rng.uniform(-0.3, 0.3), rng.uniform(-0.05, 0.05)
    return affine(points, affine_maps(sx, sy, slant, angle))


def line_batch(points: list[np.ndarray], texts: list[str], cfg: RecognizerConfig, scale: float = 1.0):
    """Data-unit lines -> x (B, T, 3) normalised, lengths (B,), ids (B, U), text lengths (B,).
    scale: data units -> the model's units (data.data_scale)."""
    B, T = len(points), max(len(p) for p in points)
    x = np.zeros((B, T, 3), np.float32)
    std = np.asarray(cfg.norm_std, np.float32) / np.float32(scale)
    for b, p in enumerate(points):
        x[b, : len(p), :2] = p[:, :2] / std
        x[b, : len(p), 2] = p[:, 2]
    text, mask = pad_texts(texts, cfg.alphabet)  # (B, U)
    return torch.from_numpy(x), torch.tensor([len(p) for p in points]), text, mask.sum(1).long()


def config_from_data(data: str | Path, **sizes) -> RecognizerConfig:
    with StrokeDataset(data) as ds:
        return RecognizerConfig(alphabet=ds.alphabet, norm_std=tuple(float(s) for s in np.asarray(ds.norm_std)),
                                **sizes)


class RecognizeTask(LineStream):
    kind = "recognizer"
    unit = "chars"

    def __init__(self, data: str | Path, cfg: RecognizerConfig, *, batch: int = 32, max_points: int | None = 1200,
                 seed: int = 0, eval_sequences: int | None = None, augment: bool = True, init: bool = False,
                 oversample: tuple[str, int] | None = None, scale: float = 1.0) -> None:
        self.path = Path(data)
        self.data = StrokeDataset(data)
        self.cfg = cfg
        self.model = Recognizer(cfg)
        self.train_split, self.val_split = self.data.split("train"), self.data.split("val")
        self.indices = readable(self.train_split, cfg, max_points)
        if len(self.indices) == 0:
            raise GenseqError(f"{data}: no training line the recognizer can read (alphabet, length)")
        self.val_indices = readable(self.val_split, cfg, None)[:eval_sequences]
        if len(self.val_indices) == 0:
            raise GenseqError(f"{data} has no usable validation lines; rebuild it with a val split")
        self.batch, self.seed, self.augment = batch, seed, augment
        self.scale = scale  # data units -> the model's (fine-tuning on strokes in other units)
        self.init = init  # fine-tuned: the config came from another model, not from flags
        self._start(oversample)

    def config(self) -> dict:
        return self.cfg.to_dict()

    def meta(self) -> dict:
        return {"data": self.path.name, "source": self.data.source, "terms": self.data.terms,
                "units": self.data.units, "resample": self.data.resample, "augment": self.augment,
                "init": self.init, "oversample": self._oversample_list(), "scale": self.scale}

    def compatible(self, ckpt: dict) -> str | None:
        if ckpt["config"] != self.cfg.to_dict():
            return "the recognizer configuration (sizes, alphabet or normalisation) differs from the checkpoint's"
        return None

    def train_batch(self, device: torch.device):
        idx = self.next_index()
        rng = self.batch_rng()
        lines = [self.train_split[i] for i in idx]
        pts = [distort(s.points, rng) if self.augment else s.points for s in lines]
        return tuple(t.to(device) for t in line_batch(pts, [s.text for s in lines], self.cfg, self.scale))

    def loss(self, b) -> tuple[torch.Tensor, int]:
        x, n, text, u = b
        # Through forward (not .nll): under torchrun self.model is the DDP wrapper.
        nll = ctc_nll(self.model(x, n), frames(n, self.cfg.stride), text, u)  # (B,)
        chars = u.sum()
        return nll.sum() / chars, int(chars)

    def evaluate(self, device: torch.device) -> dict[str, float]:
        was_training = self.model.training
        self.model.eval()
        try:
            r, self._last_pairs = read_split(self.model, self.val_split, self.val_indices, device,
                                             scale=self.scale)
        finally:
            self.model.train(was_training)
        return {"val_loss": r["nll_per_char"], "cer": r["cer"], "lines_exact": r["lines_exact"]}

    def on_eval(self, out: Path, step: int) -> None:
        """What it reads: the first validation lines, reference then best path."""
        pairs = getattr(self, "_last_pairs", [])[:20]
        with atomic_open(out / "recognized.txt", "w") as fh:
            fh.write(f"step {step}: reference | read\n")
            for ref, hyp in pairs:
                fh.write(f"{ref}\n{hyp}\n\n")


def run_config(data: str | Path, sizes: dict, *, init: Path | None = None,
               resume: Path | None = None) -> tuple[RecognizerConfig, float, bool]:
    """The config of a training run: a resumed run's own (the flags must agree
    unless it was fine-tuned), a fine-tuned model's (`init`), or new from the
    data; the data scale (data.data_scale: 1 unless a
    model is fine-tuned on strokes in other units); and whether the run fine-tunes."""
    from ..checkpoint import load_checked

    def checked(path: Path) -> dict:
        return load_checked(path, "recognizer", lambda c: Recognizer(RecognizerConfig.from_dict(c["config"])))
    if resume is not None and resume.exists():
        ck = checked(resume)
        cfg = RecognizerConfig.from_dict(ck["config"])
        differ = [f"--{k} {v} (was {getattr(cfg, k)})" for k, v in sizes.items() if getattr(cfg, k) != v]
        if differ and not ck["meta"].get("init"):
            raise GenseqError(f"cannot resume {resume}: the model configuration differs: {', '.join(differ)}")
        return cfg, float(ck["meta"].get("scale", 1.0)), bool(ck["meta"].get("init"))
    if init is not None:
        ck = checked(init)
        cfg = RecognizerConfig.from_dict(ck["config"])
        return cfg, data_scale(cfg, data, ck["meta"]), True
    return config_from_data(data, **sizes), 1.0, False


def read_split(model: Recognizer, split, indices, device, chars: str = "",
               scale: float = 1.0) -> tuple[dict, list[tuple[str, str]]]:
    """Read lines `indices` of a stroke split: CTC NLL per character, best-path
    error rate and exact lines, and the (reference, best path) pairs; with
    `chars`, also how many of those characters in the references were read
    right (chars_read / chars_seen, see recognize.read_right)."""
    total, pairs = 0.0, []
    with torch.no_grad():
        for chunk in eval_batches(split.lengths, np.asarray(indices), 32):
            lines = [split[int(i)] for i in chunk]
            x, n, text, u = (t.to(device) for t in line_batch([s.points for s in lines],
                                                             [s.text for s in lines], model.config, scale))
            logp = model(x, n)
            f = frames(n, model.config.stride)
            total += float(ctc_nll(logp, f, text, u, reduction="sum"))
            pairs += list(zip([s.text for s in lines], greedy_decode(logp, f, model.config.alphabet)))
    n = sum(len(r) for r, _ in pairs)
    out = {"cer": sum(edit_distance(r, h) for r, h in pairs) / n,
           "lines_exact": sum(r == h for r, h in pairs) / len(pairs),
           "nll_per_char": total / n, "chars": n, "lines": len(pairs)}
    if chars:
        hits = [ok for r, h in pairs if set(r) & set(chars) for c, ok in zip(r, read_right(r, h)) if c in chars]
        out.update(chars_seen=len(hits), chars_read=sum(hits),
                   chars_recall=sum(hits) / len(hits) if hits else None)
    return out, pairs


def evaluate_file(model: Recognizer, data: str | Path, split: str = "val", chars: str = "",
                  meta: dict | None = None) -> dict:
    """`genseq eval recognizer`: CTC NLL per character and best-path error rate on a
    split, and with `chars` the share of those characters read right. meta: the
    model file's, for the data scale (data.data_scale)."""
    scale = data_scale(model.config, data, meta)
    with StrokeDataset(data) as ds:
        lines = ds.split(split)
        idx = readable(lines, model.config, None)
        if len(idx) == 0:
            raise GenseqError(f"{data}: no {split} line the recognizer can read")
        return read_split(model, lines, idx, next(model.parameters()).device, chars, scale)[0]
