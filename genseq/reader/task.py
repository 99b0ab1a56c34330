"""The reader (model.py) as a training `Task` for genseq.train.

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
from ..strokes.mixed import MixedLines, data_alphabet, paths_of
from ..train.start import run_config as start_run_config
from ..strokes.split import spread
from .data import distort, line_batch, readable
from .evaluate import read_split
from .model import Recognizer, RecognizerConfig, ctc_feasible, ctc_nll, out_frames


def config_from_data(data, **sizes) -> RecognizerConfig:
    """The alphabet of the file(s), the normalisation of the first."""
    paths = paths_of(data)
    with StrokeDataset(paths[0]) as ds:
        std = tuple(float(s) for s in np.asarray(ds.norm_std))
    return RecognizerConfig(alphabet="".join(sorted(data_alphabet(paths))), norm_std=std, **sizes)


def grow_reader(state: dict, old: RecognizerConfig, new: RecognizerConfig, seed: int = 0) -> dict:
    """A reader's weights for a longer alphabet that starts with the old one:
    every weight kept bit for bit, and the output layer (one row per character
    after the CTC blank) a fresh row per new character, drawn like nn.Linear's
    own initial weights (U(-1/sqrt(in), 1/sqrt(in))); new biases 0."""
    if not new.alphabet.startswith(old.alphabet):
        raise GenseqError("the new alphabet must extend the reader's own")
    extra = len(new.alphabet) - len(old.alphabet)
    g = torch.Generator().manual_seed(seed)
    w, b = state["out.weight"], state["out.bias"]  # (V + 1, 2H), (V + 1,): blank, then the alphabet
    fresh = (torch.rand(extra, w.shape[1], generator=g, dtype=torch.float64) * 2 - 1) / w.shape[1] ** 0.5
    return {**state, "out.weight": torch.cat([w, fresh.to(w.dtype)], 0), "out.bias": torch.cat([b, b.new_zeros(extra)])}


class RecognizeTask(MixedLines):
    """The reader's training on one stroke file or several mixed by shares
    (strokes.mixed): per-file CER at each evaluation, the mix-weighted CTC NLL
    deciding best.pt."""

    kind = "recognizer"
    unit = "chars"

    def __init__(self, data: str | Path | list, config: RecognizerConfig, *, batch: int = 32,
                 max_points: int | None = 1200, seed: int = 0, eval_sequences: int | None = None,
                 augment: bool = True, init: bool = False, oversample: tuple[str, int] | None = None,
                 scale: float | list = 1.0, mix: list[float] | None = None) -> None:
        self.config = config
        self.model = Recognizer(config)
        self._open(data, lambda split, n: readable(split, config, n), scale=scale, mix=mix, batch=batch, seed=seed,
                   max_points=max_points, oversample=oversample)
        self.val_indices = [spread(readable(s.val_split, config, None), eval_sequences) for s in self.sources]
        self.augment = augment
        self.init = init  # fine-tuned: the config came from another model, not from flags


    def meta(self) -> dict:
        return {**self.files_meta(), "augment": self.augment, "init": self.init}

    def compatible(self, ckpt: dict) -> str | None:
        if ckpt["config"] != self.config.to_dict():
            return "the recognizer configuration (sizes, alphabet or normalisation) differs from the checkpoint's"
        return None

    def adapt_init(self, ckpt: dict) -> dict:
        """A fine-tune's starting reader with the alphabet grown to this run's
        (grow_reader: characters only the new data holds get fresh output rows)."""
        old = RecognizerConfig.from_dict(ckpt["config"])
        if old.alphabet == self.config.alphabet:
            return ckpt
        return {**ckpt, "config": {**ckpt["config"], "alphabet": self.config.alphabet},
                "model": grow_reader(ckpt["model"], old, self.config, seed=self.seed)}

    def train_batch(self, device: torch.device):
        idx = self.next_index()
        src, rng = self.last, self.batch_rng()
        lines = [src.train_split[i] for i in idx]
        pts = [distort(s.points, rng) if self.augment else s.points for s in lines]
        return tuple(t.to(device) for t in line_batch(pts, [s.text for s in lines], self.config, src.scale))

    def loss(self, b) -> tuple[torch.Tensor, int]:
        x, n, text, u = b
        # Through forward (not .nll): under torchrun self.model is the DDP wrapper.
        f = out_frames(self.config, x, n)
        # An image reader's line may be too narrow for its text (readable cannot see the
        # ink's width): such lines are left out of the loss and its gradient (a pen
        # reader's never are: readable checks them).
        nll = ctc_nll(self.model(x, n), f, text, u, zero_infinity=True)  # (B,)
        chars = u[ctc_feasible(f, text, u)].sum()
        return nll.sum() / chars.clamp(min=1), int(chars)

    def evaluate(self, device: torch.device) -> dict[str, float]:
        was_training = self.model.training
        self.model.eval()
        out, total, pairs = {}, 0.0, []
        try:
            for k, src in enumerate(self.sources):
                r, got = read_split(self.model, src.val_split, self.val_indices[k], device, scale=src.scale)
                pairs += got[:20]
                if len(self.sources) == 1:
                    out = {"val_loss": r["nll_per_char"], "cer": r["cer"], "lines_exact": r["lines_exact"]}
                    break
                total += float(self.mixer.shares[k]) * r["nll_per_char"]
                out[f"cer[{self.labels[k]}]"] = r["cer"]
        finally:
            self.model.train(was_training)
        self._last_pairs = pairs
        return out if len(self.sources) == 1 else {"val_loss": total, **out}

    def on_eval(self, out: Path, step: int) -> None:
        """What it reads: the first validation lines, reference then best path."""
        pairs = getattr(self, "_last_pairs", [])[:20]
        with atomic_open(out / "recognized.txt", "w") as fh:
            fh.write(f"step {step}: reference | read\n")
            for ref, hyp in pairs:
                fh.write(f"{ref}\n{hyp}\n\n")


def run_config(data, sizes: dict, *, init: Path | None = None,
               resume: Path | None = None) -> tuple[RecognizerConfig, list[float], bool]:
    """The reader's config, per-file data scales and whether the run fine-tunes (train.start.run_config)."""
    return start_run_config(data, "recognizer", RecognizerConfig, Recognizer, sizes, init=init, resume=resume,
                            new=lambda paths: config_from_data(paths, **sizes))
