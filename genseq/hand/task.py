"""Graves' handwriting networks as a training `Task` for genseq.train.

Whole sequences per batch (no truncation), length-bucketed; the loss is the
mean mixture-density NLL per predicted point (normalised units; the held-out
scores are converted to data units, see evaluate.py). At each evaluation it
draws samples of fixed phrases and the attention window as pictures.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..errors import GenseqError
from ..strokes import StrokeDataset
from .data import LineStream, augment_maps, data_scale, make_batch, usable
from .evaluate import evaluate_split
from .mdn import mdn_nll
from .model import HandwritingConfig, HandwritingModel

PHRASES = ("genseq writes by hand", "The quick brown fox jumps over the lazy dog.",
           "Call 0123 456 789, now!")


class HandTask(LineStream):
    kind = "handwriting"
    unit = "points"

    def __init__(self, data: str | Path, cfg: HandwritingConfig, *, batch: int = 32,
                 max_points: int | None = 1200, seed: int = 0, eval_sequences: int | None = None,
                 scale: float = 1.0, init: bool = False, oversample: tuple[str, int] | None = None,
                 augment: float = 0.0) -> None:
        self.path = Path(data)
        self.data = StrokeDataset(data)
        self.cfg = cfg
        self.model = HandwritingModel(cfg)
        self.train_split = self.data.split("train")
        self.val_split = self.data.split("val")
        self.scale = scale
        self.init = init  # fine-tuned: the config came from another model, not from flags
        self.indices = usable(self.train_split, cfg, max_points)
        if len(self.indices) == 0:
            raise GenseqError(f"{data}: no training sequence fits the model "
                              f"(alphabet, length <= {max_points} points)")
        if len(usable(self.val_split, cfg, None)) == 0:
            raise GenseqError(f"{data} has no usable validation sequences; rebuild it with a val split")
        self.batch, self.seed, self.eval_sequences = batch, seed, eval_sequences
        self.augment = float(augment)  # strength of the random map of each training line, 0: off
        self._start(oversample)

    # -- bookkeeping ------------------------------------------------------
    def config(self) -> dict:
        return self.cfg.to_dict()

    def meta(self) -> dict:
        return {"data": self.path.name, "source": self.data.source, "terms": self.data.terms,
                "units": self.data.units, "resample": self.data.resample, "scale": self.scale,
                "init": self.init, "oversample": self._oversample_list(), "augment": self.augment}

    def compatible(self, ckpt: dict) -> str | None:
        if ckpt["config"].get("kind") != self.cfg.kind:
            return f"the checkpoint is a {ckpt['config'].get('kind')} model, not {self.cfg.kind}"
        if ckpt["config"] != self.cfg.to_dict():
            return "the model configuration (sizes, alphabet or normalisation) differs from the checkpoint's"
        return None

    def state_dict(self) -> dict:
        return {**super().state_dict(), "augment": self.augment}

    def load_state_dict(self, st: dict) -> None:
        was = float(st.get("augment", 0.0))  # runs from before --augment had none
        if was != self.augment:
            raise GenseqError(f"cannot resume: --augment was {was:g}, now {self.augment:g}")
        super().load_state_dict(st)

    # -- training -----------------------------------------------------------
    def next_maps(self, n: int) -> np.ndarray | None:
        """The random maps (n, 2, 2) of the lines next_index() just gave (augment_maps),
        None when --augment is 0."""
        return augment_maps(self.batch_rng(), n, self.augment) if self.augment else None

    def train_batch(self, device: torch.device):
        idx = self.next_index()
        return make_batch(self.train_split, idx, self.cfg, self.scale, self.next_maps(len(idx))).to(device)

    def loss(self, b) -> tuple[torch.Tensor, int]:
        params, _, _ = self.model(b.x, b.text, b.text_mask)
        nll = mdn_nll(params, b.y, b.mask)          # (B, T)
        n = b.mask.sum()
        return nll.sum() / n, int(n)

    def evaluate(self, device: torch.device) -> dict[str, float]:
        r = evaluate_split(self.model, self.val_split, device, scale=self.scale,
                           max_sequences=self.eval_sequences)
        # val_loss in the same normalised units as the training loss, for the curve.
        log_std = math.log(self.cfg.norm_std[0]) + math.log(self.cfg.norm_std[1]) - 2 * math.log(self.scale)
        return {"val_loss": r["nll_per_point"] - log_std, "nll_per_point": r["nll_per_point"],
                "nll_per_sequence": r["nll_per_sequence"]}

    # -- pictures ---------------------------------------------------------------
    def on_eval(self, out: Path, step: int) -> None:
        from ..render import PageOptions, render_pages, save_pages
        from ..render.plots import heatmap_svg
        from .sample import HandSampleOptions, denormalise, sample_synthesis, sample_unconditional

        model = self.model
        was_training = model.training
        model.eval()
        try:
            opts = HandSampleOptions(bias=1.0, seed=0, resample_bad=0, max_steps_per_char=30)
            if self.cfg.kind == "synthesis":
                phrases = [p for p in PHRASES if set(p) <= set(self.cfg.alphabet)] or [self.cfg.alphabet[:20]]
                lines = sample_synthesis(model, phrases, opts)
                labels = [f"{ln.text} [{ln.status}]" for ln in lines]
            else:
                lines = sample_unconditional(model, 3, 300, opts)
                labels = None
            pts = [denormalise(ln.points, self.cfg.norm_mean, self.cfg.norm_std) for ln in lines]
            pages = render_pages(pts, PageOptions(background="white"), labels=labels)
            save_pages(pages[:1], out / "samples.svg")
            save_pages(pages[:1], out / f"samples-{step:07d}.svg")
            if self.cfg.kind == "synthesis":
                # Attention over the first validation line, teacher-forced.
                idx = usable(self.val_split, self.cfg, None)[:1]
                b = make_batch(self.val_split, list(idx), self.cfg, self.scale).to(next(model.parameters()).device)
                with torch.no_grad():
                    _, _, extra = model(b.x, b.text, b.text_mask)
                phi = extra["phi"][0].float().cpu().numpy()  # (T, U)
                heatmap_svg(phi, out / "attention.svg", x_labels=self.val_split[int(idx[0])].text,
                            title=f"attention window, step {step}")
        finally:
            model.train(was_training)


def config_from_data(data: str | Path, kind: str, **sizes) -> HandwritingConfig:
    """A model config whose alphabet and normalisation come from the dataset."""
    with StrokeDataset(data) as ds:
        alphabet = ds.alphabet if kind == "synthesis" else ""
        # Normalise by the std only: the mean drift (writing moves right) is part
        # of what the model predicts, and dividing keeps offsets O(1).
        return HandwritingConfig(kind=kind, alphabet=alphabet, norm_mean=(0.0, 0.0),
                                 norm_std=tuple(float(s) for s in np.asarray(ds.norm_std)), **sizes)


def run_config(data: str | Path, kind: str, sizes: dict, *, init: Path | None = None,
               resume: Path | None = None) -> tuple[HandwritingConfig, float, bool]:
    """The model config and data scale of a training run: a resumed run's own
    (the flags must agree with it unless it was fine-tuned), a fine-tuned
    model's (`init`), or new from the data; and whether the run fine-tunes."""
    from ..checkpoint import load_checkpoint
    if resume is not None and resume.exists():
        ck = load_checkpoint(resume, kind="handwriting")
        cfg = HandwritingConfig.from_dict(ck["config"])
        if not ck["meta"].get("init"):
            wanted = {"kind": kind, **sizes}
            differ = [f"--{k} {v} (was {getattr(cfg, k)})" for k, v in wanted.items() if getattr(cfg, k) != v]
            if differ:
                raise GenseqError(f"cannot resume {resume}: the model configuration differs: {', '.join(differ)}")
        return cfg, float(ck["meta"].get("scale", 1.0)), bool(ck["meta"].get("init"))
    if init is not None:
        ck = load_checkpoint(init, kind="handwriting")
        cfg = HandwritingConfig.from_dict(ck["config"])
        return cfg, data_scale(cfg, data, ck["meta"]), True
    return config_from_data(data, kind, **sizes), 1.0, False
