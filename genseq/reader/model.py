"""A handwriting recognizer: bidirectional LSTM + CTC over pen offsets.

It reads strokes and scores how well they spell a text: log p(text | strokes)
under Connectionist Temporal Classification (Graves et al. 2006; the online
handwriting set-up of Graves et al. 2009, "A Novel Connectionist System for
Unconstrained Handwriting Recognition"). `genseq write` draws several
candidates per line from the synthesis network and keeps the one this model
reads best: the synthesis network's own likelihood favours smooth strokes,
not the right letters (measured: picking by it did not help), while a
discriminative reader scores whether these strokes spell this text.

Input: the synthesis model's normalised points (B, T, 3) = (dx, dy, pen-up).
Groups of S consecutive points are concatenated (stride S, (B, T/S, 3S)) so
the LSTMs run S times fewer steps; IAM-OnDB at `--every 2` has about 11
points per character, about 2.8 frames per character at S = 4 (the default), enough for CTC's
blank-separated repeats.
Output: log-probabilities (B, T/S, V+1), index 0 the CTC blank, index i the
alphabet's character i (`encode_texts`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..configs import checked_config
from ..errors import GenseqError
from .raster import raster_widths, rasterise

@dataclass(frozen=True)
class RecognizerConfig:
    """Everything needed to rebuild a recognizer; stored in checkpoints as a dict."""

    alphabet: str = ""  # characters with ids 1..V (0 = CTC blank)
    hidden: int = 192  # H per direction
    layers: int = 2
    stride: int = 4  # points per LSTM frame (IAM-OnDB at --every 2: about 2.8 frames per character)
    dropout: float = 0.25  # on the LSTM inputs and outputs while training (the bundled model: 0.25)
    norm_std: tuple[float, float] = (1.0, 1.0)  # (dx, dy) std the data was divided by
    kind: str = "recognizer"
    input: str = "pen"  # what it reads: "pen", the offsets; "image", the ink drawn (raster.py)
    height: int = 48  # image: rows of the picture
    px_per_unit: float = 0.1  # image: pixels per data unit (an IAM-OnDB character: about 19 columns)

    def __post_init__(self):
        if self.kind != "recognizer":
            raise GenseqError(f"not a recognizer config (kind {self.kind!r})")
        if not self.alphabet or len(set(self.alphabet)) != len(self.alphabet):
            raise GenseqError("a recognizer needs a non-empty alphabet without repeats")
        if min(self.hidden, self.layers, self.stride) < 1:
            raise GenseqError("hidden, layers and stride must be >= 1")
        if not 0 <= self.dropout < 1:
            raise GenseqError("dropout must be in [0, 1)")
        if self.input not in INPUTS:
            raise GenseqError(f"a recognizer reads {' or '.join(INPUTS)}, not {self.input!r}")
        if self.input == "image" and not (MIN_HEIGHT <= self.height <= MAX_HEIGHT
                                          and 0.01 <= self.px_per_unit <= 1):
            raise GenseqError(f"an image reader needs a height of {MIN_HEIGHT} to {MAX_HEIGHT} rows and "
                              "0.01 to 1 pixels per data unit")
        object.__setattr__(self, "norm_std", tuple(float(v) for v in self.norm_std))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["norm_std"] = list(self.norm_std)
        if self.input == "pen":  # a pen reader's file is as before image readers existed
            for k in ("input", "height", "px_per_unit"):
                d.pop(k)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RecognizerConfig":
        """A config from a model file's dict (configs.checked_config)."""
        return checked_config(cls, d, "recognizer", positive=("norm_std",))


INPUTS = ("pen", "image")
MIN_HEIGHT, MAX_HEIGHT = 16, 128  # an image reader's rows
POOL = (2, 3)  # an image reader's max-pooling of columns: 6 columns per output frame


def frames(lengths: torch.Tensor, stride: int) -> torch.Tensor:
    """A pen reader's output frames for inputs of `lengths` points (the stride rounds up)."""
    return (lengths + stride - 1) // stride


def out_frames(config: RecognizerConfig, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Output frames (B,) of each line of x (B, T, 3): a pen reader's by its points, an
    image reader's by its picture's width (raster.raster_widths, pooled by POOL)."""
    if config.input == "pen":
        return frames(lengths, config.stride)
    w = raster_widths(x, lengths, config.norm_std, config.px_per_unit)
    for k in POOL:
        w = w // k
    return w.clamp(min=1).to(lengths.device)


def encode_texts(texts: list[str], alphabet: str) -> tuple[torch.Tensor, torch.Tensor]:
    """CTC targets: ids (B, U) long, alphabet[i] -> i + 1, right-padded with 0 (the
    blank, never a target), and the text lengths (B,)."""
    index = {ch: i + 1 for i, ch in enumerate(alphabet)}
    missing = sorted({ch for t in texts for ch in t if ch not in index})
    if missing:
        raise GenseqError(f"characters not in the reader's alphabet: {''.join(missing)!r}")
    out = torch.zeros(len(texts), max((len(t) for t in texts), default=0), dtype=torch.long)
    for b, t in enumerate(texts):
        out[b, : len(t)] = torch.tensor([index[ch] for ch in t], dtype=torch.long)
    return out, torch.tensor([len(t) for t in texts], dtype=torch.long)


class Recognizer(nn.Module):
    def __init__(self, config: RecognizerConfig):
        super().__init__()
        self.config = config
        H, S = config.hidden, config.stride
        if config.input == "image":
            # (B, 1, R, W) -> (B, 96, R/8, W/6): 3x3 convolutions, max-pooling rows by 2 three
            # times and columns by POOL.
            sizes = ((1, 16), (16, 32), (32, 64), (64, 96))
            self.conv = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1, bias=False) for a, b in sizes)
            self.norm = nn.ModuleList(nn.BatchNorm2d(b) for _, b in sizes)  # (Ioffe & Szegedy 2015)
            # Convolutions, then a recurrent layer, then CTC: Shi, Bai & Yao 2016 (CRNN).
        self.inp = nn.Linear(96 if config.input == "image" else 3 * S, H)
        self.lstm = nn.LSTM(H, H, num_layers=config.layers, batch_first=True, bidirectional=True,
                            dropout=config.dropout if config.layers > 1 else 0.0)
        self.drop = nn.Dropout(config.dropout)
        self.out = nn.Linear(2 * H, len(config.alphabet) + 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x (B, T, 3), lengths (B,) real points -> log-probs (B, T', V+1); a pen
        reader's T' = ceil(T/S), an image reader's the widest picture's columns / POOL
        (each line's own: out_frames)."""
        B, T, _ = x.shape
        S = self.config.stride
        if self.config.input == "image":
            c = self.config
            widths = raster_widths(x, lengths, c.norm_std, c.px_per_unit)  # (B,)
            img = rasterise(x, lengths, c.norm_std, c.height, c.px_per_unit, int(widths.max()))  # (B, 1, R, W)
            f = self._see(img, widths)  # (B, W/6, 96)
            z = self.drop(torch.tanh(self.inp(f)))  # (B, T', H)
        else:
            # Points past a line's end share its last frame: zero them, whatever the padding held.
            real = (torch.arange(T, device=x.device) < lengths.to(x.device)[:, None]).unsqueeze(-1)  # (B, T, 1)
            x = torch.where(real, x, torch.zeros((), dtype=x.dtype, device=x.device))
            pad = (-T) % S
            if pad:
                x = F.pad(x, (0, 0, 0, pad))
            z = self.drop(torch.tanh(self.inp(x.reshape(B, -1, 3 * S))))  # (B, T', H)
        n = out_frames(self.config, x, lengths).clamp(min=1, max=z.shape[1]).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(z, n, batch_first=True, enforce_sorted=False)
        h, _ = self.lstm(packed)
        h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=z.shape[1])  # (B, T', 2H)
        return torch.log_softmax(self.out(self.drop(h)).float(), dim=-1)

    def _see(self, img: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
        """Pictures (B, 1, R, W) of lines `widths` (B,) columns wide -> (B, W/6, 96), each
        output column's strongest features over the rows. Features past a line's own
        width are zeroed after every convolution, so that a line reads the same alone
        as beside wider ones (in eval mode: while training, batch normalisation's
        statistics take in the whole batch)."""
        h, w = img, widths.to(img.device)
        for k, (conv, norm) in enumerate(zip(self.conv, self.norm)):
            h = F.relu(norm(conv(h)))
            if k < 3:  # rows by 2, columns by POOL[k]
                cols = POOL[k] if k < len(POOL) else 1
                h = F.max_pool2d(h, (2, cols))
                w = w // cols
            h = h * (torch.arange(h.shape[-1], device=h.device) < w[:, None]).view(len(h), 1, 1, -1)
        return h.amax(2).transpose(1, 2)

    def nll(self, x: torch.Tensor, lengths: torch.Tensor, text: torch.Tensor,
            text_lengths: torch.Tensor) -> torch.Tensor:
        """-log p(text | strokes) per sequence (B,), in nats; see `ctc_nll`."""
        return ctc_nll(self.forward(x, lengths), out_frames(self.config, x, lengths), text, text_lengths)


def ctc_nll(logp: torch.Tensor, n_frames: torch.Tensor, text: torch.Tensor, text_lengths: torch.Tensor,
            reduction: str = "none", zero_infinity: bool = False) -> torch.Tensor:
    """CTC negative log-likelihood (Graves et al. 2006 eq. 14) of log-probs (B, T', V+1).

    text (B, U) ids 1..V right-padded with 0, blank = 0. Impossible alignments
    (more characters than frames allow) give +inf, never NaN; with zero_infinity,
    0 and a zero gradient (for training on lines some of which may not fit)."""
    return F.ctc_loss(logp.transpose(0, 1), text, n_frames, text_lengths, blank=0, reduction=reduction,
                      zero_infinity=zero_infinity)


def ctc_feasible(n_frames: torch.Tensor, text: torch.Tensor, text_lengths: torch.Tensor) -> torch.Tensor:
    """(B,) bool: CTC can align each text with its frames (a frame per character,
    plus a blank between equal neighbours). text (B, U) right-padded with 0."""
    repeats = ((text[:, 1:] == text[:, :-1]) & (text[:, 1:] != 0)).sum(1)
    return n_frames.to(text.device) >= text_lengths + repeats


def greedy_decode(logp: torch.Tensor, n_frames: torch.Tensor, alphabet: str) -> list[str]:
    """Best path: the most likely label per frame, repeats merged, blanks dropped."""
    best = logp.argmax(-1).cpu()  # (B, T')
    out = []
    for row, n in zip(best, n_frames.tolist()):
        prev, chars = 0, []
        for i in row[:n].tolist():
            if i != prev and i != 0:
                chars.append(alphabet[i - 1])
            prev = i
        out.append("".join(chars))
    return out
