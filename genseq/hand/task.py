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
from ..strokes.clean import Skip
from ..strokes.mixed import MixedLines, data_alphabet, paths_of
from ..train.start import run_config as start_run_config
from ..strokes.normalise import ink_target, model_ink
from .data import augment_maps, make_batch, usable
from .evaluate import evaluate_split
from .mdn import mdn_nll
from .model import HandwritingConfig, HandwritingModel

PHRASES = ("genseq writes by hand", "The quick brown fox jumps over the lazy dog.",
           "Call 0123 456 789, now!")


class HandTask(MixedLines):
    """Training on one stroke file, or on several mixed by shares (`mix`): each
    batch comes from one file (bucketed by its lengths), file k with
    probability mix[k]; each file has its own data position and scale, and the
    held-out score is reported per file, the mix-weighted mean deciding best.pt."""

    kind = "handwriting"
    unit = "points"

    def __init__(self, data: str | Path | list, config: HandwritingConfig, *, batch: int = 32,
                 max_points: int | None = 1200, seed: int = 0, eval_sequences: int | None = None,
                 scale: float | list = 1.0, init: bool = False, oversample: tuple[str, int] | None = None,
                 augment: float = 0.0, dropout: float = 0.0, mix: list[float] | None = None,
                 ink: dict | None = None,
                 styles: list[dict] | None = None, blend: tuple[float, dict] | None = None,
                 writer_shear: float | None = None) -> None:
        self.config = config
        self.model = HandwritingModel(config)
        self.init = init  # fine-tuned: the config came from another model, not from flags
        self.eval_sequences = eval_sequences
        self.augment = float(augment)  # strength of the random map of each training line, 0: off
        self.model.dropout = self.dropout = float(dropout)  # between layers, while training (model.py)
        self._open(data, lambda split, n: usable(split, config, n), scale=scale, mix=mix, batch=batch, seed=seed,
                   max_points=max_points, oversample=oversample)
        self.ink = ink  # the ink the model writes (size, density), for normalising a user's ink; None: measured
        self.styles = styles  # priming lines the model file carries (a fine-tune on one writer: theirs)
        self.writer_shear = writer_shear  # that writer's slant, their lines stood upright (hand.slant.model_lean)
        self.blend = blend  # (a, the starting model's weights): best.pt keeps a * tuned + (1 - a) * start

    # -- bookkeeping ------------------------------------------------------

    def meta(self) -> dict:
        meta = {**self.files_meta(), "init": self.init, "augment": self.augment, "ink": self._ink()}
        if self.dropout:
            meta["dropout"] = self.dropout
        if self.blend is not None:
            meta["blend"] = self.blend[0]
        if self.writer_shear is not None:
            meta["writer_shear"] = self.writer_shear
        return {**meta, "styles": self.styles} if self.styles else meta

    def kept(self, state: dict) -> dict:
        """The weights best.pt keeps: with `blend`, pulled back towards the start (train/blend.py)."""
        if self.blend is None:
            return state
        from ..train.blend import blend_weights
        a, start = self.blend
        return blend_weights(state, start, a)

    def _ink(self) -> dict | None:
        """The model's ink (genseq.strokes.normalise.InkTarget) as a dict: given
        (a fine-tune keeps its model's), else measured once on the first file."""
        if self.ink is None:
            try:
                self.ink = ink_target(self.train_split).to_dict()
            except Skip:
                self.ink = {}
        return self.ink or None

    def compatible(self, ckpt: dict) -> str | None:
        if ckpt["config"].get("kind") != self.config.kind:
            return f"the checkpoint is a {ckpt['config'].get('kind')} model, not {self.config.kind}"
        if ckpt["config"] != self.config.to_dict():
            return "the model configuration (sizes, alphabet or normalisation) differs from the checkpoint's"
        return None

    def adapt_init(self, ckpt: dict) -> dict:
        """A fine-tune's starting weights with the alphabet grown to this run's
        (characters only the new data holds get fresh columns; see grow_alphabet)."""
        old = HandwritingConfig.from_dict(ckpt["config"])
        if old.kind != "synthesis" or old.alphabet == self.config.alphabet:
            return ckpt
        state = grow_alphabet(ckpt["model"], old, self.config, seed=self.seed)
        return {**ckpt, "config": {**ckpt["config"], "alphabet": self.config.alphabet}, "model": state}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "augment": self.augment, "dropout": self.dropout}

    def load_state_dict(self, st: dict) -> None:
        for name in ("augment", "dropout"):  # runs from before these options had none
            was, now = float(st.get(name, 0.0)), getattr(self, name)
            if was != now:
                raise GenseqError(f"cannot resume: --{name} was {was:g}, now {now:g}")
        super().load_state_dict(st)

    # -- training -----------------------------------------------------------
    def next_maps(self, n: int) -> np.ndarray | None:
        """The random maps (n, 2, 2) of the lines next_index() just gave (augment_maps),
        None when --augment is 0."""
        return augment_maps(self.batch_rng(), n, self.augment) if self.augment else None

    def train_batch(self, device: torch.device):
        idx = self.next_index()
        src = self.last
        return make_batch(src.train_split, idx, self.config, src.scale, self.next_maps(len(idx))).to(device)

    def loss(self, b) -> tuple[torch.Tensor, int]:
        params, _, _ = self.model(b.x, b.text, b.text_mask)
        nll = mdn_nll(params, b.y, b.mask)          # (B, T)
        n = b.mask.sum()
        return nll.sum() / n, int(n)

    def evaluate(self, device: torch.device) -> dict[str, float]:
        rs = [evaluate_split(self.model, src.val_split, device, scale=src.scale, max_sequences=self.eval_sequences)
              for src in self.sources]
        # val_loss in the same normalised units as the training loss, for the curve.
        log_std = math.log(self.config.norm_std[0]) + math.log(self.config.norm_std[1])
        losses = [r["nll_per_point"] - log_std + 2 * math.log(src.scale) for r, src in zip(rs, self.sources)]
        if len(rs) == 1:
            return {"val_loss": losses[0], "nll_per_point": rs[0]["nll_per_point"],
                    "nll_per_sequence": rs[0]["nll_per_sequence"]}
        return {"val_loss": float(np.dot(self.mixer.shares, losses)),
                **{f"nll_per_point[{name}]": r["nll_per_point"] for name, r in zip(self.labels, rs)}}

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
            if self.config.kind == "synthesis":
                phrases = [p for p in PHRASES if set(p) <= set(self.config.alphabet)] or [self.config.alphabet[:20]]
                lines = sample_synthesis(model, phrases, opts)
                labels = [f"{ln.text} [{ln.status}]" for ln in lines]
            else:
                lines = sample_unconditional(model, 3, 300, opts)
                labels = None
            pts = [denormalise(ln.points, self.config.norm_mean, self.config.norm_std) for ln in lines]
            pages = render_pages(pts, PageOptions(background="white"), labels=labels)
            save_pages(pages[:1], out / "samples.svg")
            save_pages(pages[:1], out / f"samples-{step:07d}.svg")
            if self.config.kind == "synthesis":
                # Attention over the first validation line, teacher-forced.
                idx = usable(self.val_split, self.config, None)[:1]
                b = make_batch(self.val_split, list(idx), self.config, self.scale).to(next(model.parameters()).device)
                with torch.no_grad():
                    _, _, extra = model(b.x, b.text, b.text_mask)
                phi = extra["phi"][0].float().cpu().numpy()  # (T, U)
                heatmap_svg(phi, out / "attention.svg", x_labels=self.val_split[int(idx[0])].text,
                            title=f"attention window, step {step}")
        finally:
            model.train(was_training)


def config_from_data(data, kind: str, **sizes) -> HandwritingConfig:
    """A model config whose alphabet comes from the dataset(s) and normalisation
    from the first one (the others are brought to its units by data_scale)."""
    paths = paths_of(data)
    with StrokeDataset(paths[0]) as ds:
        std = tuple(float(s) for s in np.asarray(ds.norm_std))
    alphabet = "".join(sorted(data_alphabet(paths))) if kind == "synthesis" else ""
    # Normalise by the std only: the mean drift (writing moves right) is part
    # of what the model predicts, and dividing keeps offsets O(1).
    return HandwritingConfig(kind=kind, alphabet=alphabet, norm_mean=(0.0, 0.0), norm_std=std, **sizes)


def grow_alphabet(state: dict, old: HandwritingConfig, new: HandwritingConfig, seed: int = 0) -> dict:
    """A synthesis model's weights for a longer alphabet that starts with the old
    one: every weight is kept bit for bit, and the one-hot window input of each
    LSTM layer gets a fresh column per new character, drawn like nn.LSTM's own
    initial weights (U(-1/sqrt(H), 1/sqrt(H))). The window vector w (V,) is the
    last block of every layer's input (layer 1 [x, w], layer n [x, h, w])."""
    if not new.alphabet.startswith(old.alphabet):
        raise GenseqError("the new alphabet must extend the model's own")
    extra = len(new.alphabet) - len(old.alphabet)
    g = torch.Generator().manual_seed(seed)
    out = dict(state)
    bound = 1.0 / math.sqrt(old.hidden)
    for n in range(old.layers):
        key = f"lstms.{n}.weight_ih_l0"
        w = state[key]  # (4H, in)
        fresh = (torch.rand(w.shape[0], extra, generator=g, dtype=torch.float64) * 2 - 1) * bound
        out[key] = torch.cat([w, fresh.to(w.dtype)], 1)
    return out


def run_ink(init_meta: dict | None = None, resume_meta: dict | None = None) -> dict | None:
    """The ink a run's model writes: a resumed run's (`resume_meta`, its last.pt's
    meta), or that of the model it fine-tunes (`init_meta`, its file's meta); None
    (measure the data) for a new model."""
    if resume_meta is not None:
        ink = resume_meta.get("ink")
        return ink if isinstance(ink, dict) else None
    if init_meta is not None:
        t = model_ink(init_meta)
        return None if t is None else t.to_dict()
    return None


def run_config(data, kind: str, sizes: dict, *, init: Path | None = None,
               resume: Path | None = None) -> tuple[HandwritingConfig, list[float], bool]:
    """The model config, per-file data scales and whether the run fine-tunes (train.start.run_config)."""
    return start_run_config(data, "handwriting", HandwritingConfig, HandwritingModel, {"kind": kind, **sizes},
                            init=init, resume=resume, new=lambda paths: config_from_data(paths, kind, **sizes))
