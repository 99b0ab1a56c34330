"""Graves' handwriting networks as a training `Task` for genseq.train.

Whole sequences per batch (no truncation), length-bucketed; the loss is the
mean mixture-density NLL per predicted point (normalised units; the held-out
scores are converted to data units, see evaluate.py). At each evaluation it
draws samples of fixed phrases and the attention window as pictures.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import torch

from ..errors import GenseqError
from ..strokes import StrokeDataset
from ..strokes.clean import Skip
from ..strokes.normalise import ink_target, model_ink
from .data import LineSource, Mixer, augment_maps, data_scale, make_batch, usable
from .evaluate import evaluate_split
from .mdn import mdn_nll
from .model import HandwritingConfig, HandwritingModel

PHRASES = ("genseq writes by hand", "The quick brown fox jumps over the lazy dog.",
           "Call 0123 456 789, now!")


class HandTask:
    """Training on one stroke file, or on several mixed by shares (`mix`): each
    batch comes from one file (bucketed by its lengths), file k with
    probability mix[k]; each file has its own data position and scale, and the
    held-out score is reported per file, the mix-weighted mean deciding best.pt."""

    kind = "handwriting"
    unit = "points"

    def __init__(self, data: str | Path | list, cfg: HandwritingConfig, *, batch: int = 32,
                 max_points: int | None = 1200, seed: int = 0, eval_sequences: int | None = None,
                 scale: float | list = 1.0, init: bool = False, oversample: tuple[str, int] | None = None,
                 augment: float = 0.0, mix: list[float] | None = None, ink: dict | None = None) -> None:
        paths = [Path(p) for p in (data if isinstance(data, (list, tuple)) else [data])]
        scales = list(scale) if isinstance(scale, (list, tuple)) else [scale] * len(paths)
        if len(scales) != len(paths):
            raise GenseqError(f"{len(paths)} files but {len(scales)} scales")
        if len({p.resolve() for p in paths}) != len(paths):
            raise GenseqError("the same stroke file is given twice; use --mix to weight it")
        if mix is not None and len(mix) != len(paths):
            raise GenseqError(f"--mix has {len(mix)} shares for {len(paths)} files")
        self.cfg = cfg
        self.model = HandwritingModel(cfg)
        self.init = init  # fine-tuned: the config came from another model, not from flags
        self.batch, self.seed, self.eval_sequences = batch, seed, eval_sequences
        self.augment = float(augment)  # strength of the random map of each training line, 0: off
        self.sources = [LineSource(p, StrokeDataset(p), cfg, batch=batch, seed=seed, max_points=max_points,
                                   scale=s, salt=k, oversample=oversample)
                        for k, (p, s) in enumerate(zip(paths, scales))]
        self.mixer = Mixer(mix if mix is not None else [len(s.indices) for s in self.sources], seed)
        self._last = self.sources[0]
        stems = [p.name for p in paths]  # names in metrics and meta: the files' own, as given if two share one
        self.labels = stems if len(set(stems)) == len(stems) else [str(p) for p in paths]
        self.ink = ink  # the ink the model writes (size, density), for normalising a user's ink; None: measured

    # The first file's view, for callers that knew only one file.
    @property
    def path(self) -> Path:
        return self.sources[0].path

    @property
    def data(self) -> StrokeDataset:
        return self.sources[0].data

    @property
    def train_split(self):
        return self.sources[0].train_split

    @property
    def val_split(self):
        return self.sources[0].val_split

    @property
    def scale(self) -> float:
        return self.sources[0].scale

    @property
    def indices(self) -> np.ndarray:
        return self.sources[0].indices

    # -- bookkeeping ------------------------------------------------------
    def config(self) -> dict:
        return self.cfg.to_dict()

    def meta(self) -> dict:
        ds = [s.data for s in self.sources]
        out = {"data": self.path.name, "source": self.data.source, "terms": self.data.terms,
               "units": self.data.units, "resample": self.data.resample, "scale": self.scale,
               "init": self.init, "oversample": self.sources[0]._oversample_list(), "augment": self.augment,
               "ink": self._ink()}
        if len(self.sources) > 1:
            out.update(data=" + ".join(self.labels),
                       source=" + ".join(d.source for d in ds), terms=" ".join(dict.fromkeys(d.terms for d in ds)),
                       files=[{"data": name, "source": s.data.source, "units": s.data.units,
                               "resample": s.data.resample, "scale": s.scale} for name, s in zip(self.labels, self.sources)],
                       mix=self.mixer.shares.tolist())
        return out

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
        if ckpt["config"].get("kind") != self.cfg.kind:
            return f"the checkpoint is a {ckpt['config'].get('kind')} model, not {self.cfg.kind}"
        if ckpt["config"] != self.cfg.to_dict():
            return "the model configuration (sizes, alphabet or normalisation) differs from the checkpoint's"
        return None

    def adapt_init(self, ckpt: dict) -> dict:
        """A fine-tune's starting weights with the alphabet grown to this run's
        (characters only the new data holds get fresh columns; see grow_alphabet)."""
        old = HandwritingConfig.from_dict(ckpt["config"])
        if old.kind != "synthesis" or old.alphabet == self.cfg.alphabet:
            return ckpt
        state = grow_alphabet(ckpt["model"], old, self.cfg, seed=self.seed)
        return {**ckpt, "config": {**ckpt["config"], "alphabet": self.cfg.alphabet}, "model": state}

    def state_dict(self) -> dict:
        if len(self.sources) == 1:
            return {**self.sources[0].state_dict(), "augment": self.augment}
        return {"sources": [s.state_dict() for s in self.sources], "draws": self.mixer.draws,
                "mix": self.mixer.shares.tolist(), "augment": self.augment}

    def load_state_dict(self, st: dict) -> None:
        was = float(st.get("augment", 0.0))  # runs from before --augment had none
        if was != self.augment:
            raise GenseqError(f"cannot resume: --augment was {was:g}, now {self.augment:g}")
        saved = st.get("sources", [st])
        if len(saved) != len(self.sources):
            raise GenseqError(f"cannot resume: the run read {len(saved)} stroke file(s), now {len(self.sources)}")
        if "mix" in st and not np.allclose(st["mix"], self.mixer.shares):
            raise GenseqError(f"cannot resume: --mix was {st['mix']}, now {self.mixer.shares.tolist()}")
        for src, s in zip(self.sources, saved):
            src.load_state_dict(s)
        self.mixer.draws = int(st.get("draws", 0))

    def shard(self, rank: int, world: int) -> None:
        for s in self.sources:
            s.shard(rank, world)

    # -- training -----------------------------------------------------------
    def next_index(self) -> list[int]:
        """The next batch's line numbers in the file that next_source() drew."""
        self._last = self.sources[self.mixer.next() if len(self.sources) > 1 else 0]
        return self._last.next_index()

    def next_maps(self, n: int) -> np.ndarray | None:
        """The random maps (n, 2, 2) of the lines next_index() just gave (augment_maps),
        None when --augment is 0."""
        return augment_maps(self._last.batch_rng(), n, self.augment) if self.augment else None

    def train_batch(self, device: torch.device):
        idx = self.next_index()
        src = self._last
        return make_batch(src.train_split, idx, self.cfg, src.scale, self.next_maps(len(idx))).to(device)

    def loss(self, b) -> tuple[torch.Tensor, int]:
        params, _, _ = self.model(b.x, b.text, b.text_mask)
        nll = mdn_nll(params, b.y, b.mask)          # (B, T)
        n = b.mask.sum()
        return nll.sum() / n, int(n)

    def evaluate(self, device: torch.device) -> dict[str, float]:
        out, total = {}, 0.0
        for k, src in enumerate(self.sources):
            r = evaluate_split(self.model, src.val_split, device, scale=src.scale,
                               max_sequences=self.eval_sequences)
            # val_loss in the same normalised units as the training loss, for the curve.
            log_std = math.log(self.cfg.norm_std[0]) + math.log(self.cfg.norm_std[1]) - 2 * math.log(src.scale)
            if len(self.sources) == 1:
                return {"val_loss": r["nll_per_point"] - log_std, "nll_per_point": r["nll_per_point"],
                        "nll_per_sequence": r["nll_per_sequence"]}
            total += float(self.mixer.shares[k]) * (r["nll_per_point"] - log_std)
            out[f"nll_per_point[{self.labels[k]}]"] = r["nll_per_point"]
        return {"val_loss": total, **out}

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


def _paths(data) -> list[Path]:
    return [Path(p) for p in (data if isinstance(data, (list, tuple)) else [data])]


def data_alphabet(data) -> str:
    """The characters of one stroke file, or the union of several, in order of first file first
    (each file's own alphabet is sorted)."""
    out: dict[str, None] = {}
    for p in _paths(data):
        with StrokeDataset(p) as ds:
            out.update(dict.fromkeys(ds.alphabet))
    return "".join(out)


def config_from_data(data, kind: str, **sizes) -> HandwritingConfig:
    """A model config whose alphabet comes from the dataset(s) and normalisation
    from the first one (the others are brought to its units by data_scale)."""
    paths = _paths(data)
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


def run_ink(init: Path | None = None, resume: Path | None = None) -> dict | None:
    """The ink a run's model writes: a resumed run's, or the fine-tuned model's;
    None (measure the data) for a new model."""
    from ..checkpoint import load_checkpoint
    if resume is not None and resume.exists():
        ink = load_checkpoint(resume, kind="handwriting")["meta"].get("ink")
        return ink if isinstance(ink, dict) else None
    if init is not None:
        t = model_ink(load_checkpoint(init, kind="handwriting")["meta"])
        return None if t is None else t.to_dict()
    return None


def run_config(data, kind: str, sizes: dict, *, init: Path | None = None,
               resume: Path | None = None) -> tuple[HandwritingConfig, list[float], bool]:
    """The model config and per-file data scales of a training run: a resumed
    run's own (the flags must agree with it unless it was fine-tuned), a
    fine-tuned model's (`init`; its alphabet grown by the characters only the
    data holds), or new from the data; and whether the run fine-tunes."""
    from ..checkpoint import load_checked
    paths = _paths(data)

    def checked(path: Path) -> dict:
        return load_checked(path, "handwriting", lambda c: HandwritingModel(HandwritingConfig.from_dict(c["config"])))
    if resume is not None and resume.exists():
        ck = checked(resume)
        cfg = HandwritingConfig.from_dict(ck["config"])
        if not ck["meta"].get("init"):
            wanted = {"kind": kind, **sizes}
            differ = [f"--{k} {v} (was {getattr(cfg, k)})" for k, v in wanted.items() if getattr(cfg, k) != v]
            if differ:
                raise GenseqError(f"cannot resume {resume}: the model configuration differs: {', '.join(differ)}")
        files = ck["meta"].get("files") or [{"scale": ck["meta"].get("scale", 1.0)}]
        if len(files) != len(paths):
            raise GenseqError(f"cannot resume {resume}: the run read {len(files)} stroke file(s), now {len(paths)}")
        return cfg, [float(f.get("scale", 1.0)) for f in files], bool(ck["meta"].get("init"))
    if init is not None:
        ck = checked(init)
        cfg = HandwritingConfig.from_dict(ck["config"])
        if cfg.kind == "synthesis":
            new = "".join(sorted(set(data_alphabet(paths)) - set(cfg.alphabet)))
            if new:
                cfg = dataclasses.replace(cfg, alphabet=cfg.alphabet + new)
        return cfg, [data_scale(cfg, p, ck["meta"]) for p in paths], True
    cfg = config_from_data(paths, kind, **sizes)
    return cfg, [1.0] + [data_scale(cfg, p) for p in paths[1:]], False
