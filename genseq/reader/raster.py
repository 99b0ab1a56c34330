"""Pen offsets drawn as pictures, for a reader that reads what the eye sees.

The pen reader (model.py, input "pen") reads the path: the order and
direction of the strokes. People read the picture, in which a stroke drawn
in an odd order, or a dot too close to another, may read otherwise. This
module rasterises lines on the GPU or CPU, in a batch, with no loop over
lines: every pen-down segment is sampled at SAMPLES points, each sample is
splatted bilinearly into a fixed-height image (a pixel keeps the largest
weight it gets, so the picture does not darken where the pen was sampled
densely), then the strokes are thickened by a 3x3 max filter. Ink sampled
more or less densely gives the same picture as long as pen-down segments
stay under about 3 * SAMPLES pixels (the bundled ink: 1-2).

Geometry (data units: the stroke files' own, which the bundled models share):
a line's leftmost point sits at column PAD and the median height of its ink
at the middle row, y up, at `px_per_unit` pixels per data unit in both
directions. The reader's defaults, 0.1 with 48 rows, give an IAM-OnDB
character about 19 columns and keep about +-240 units around the median
height (IAM-OnDB lines reach about -280 and +270 at their 0.5th and 99.5th
percentiles: the tips of a few descenders and capitals are cut).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

SAMPLES = 8  # points splatted per pen-down segment (the bundled ink: 1-2 pixels per segment)
PAD = 2  # columns left blank before a line's first ink
MIN_COLS, MAX_COLS = 6, 8192  # a picture's columns (8,192: about 430 IAM-OnDB characters at 0.1)


def pen_positions(x: torch.Tensor, lengths: torch.Tensor, std) -> tuple[torch.Tensor, torch.Tensor]:
    """Offsets x (B, T, 3) normalised by std -> pen positions (B, T, 2) in data units
    and the mask of real points (B, T)."""
    B, T, _ = x.shape
    real = torch.arange(T, device=x.device)[None] < lengths.to(x.device)[:, None]  # (B, T)
    d = x[:, :, :2].float() * torch.as_tensor(std, dtype=torch.float32, device=x.device)
    d = torch.where(real[..., None], d, torch.zeros((), device=x.device))
    return torch.cumsum(d, 1), real


def raster_widths(x: torch.Tensor, lengths: torch.Tensor, std, px_per_unit: float) -> torch.Tensor:
    """Columns (B,) of each line's picture: its ink's width plus PAD on both sides,
    at least MIN_COLS (a dot still gives a picture a reader can pool) and at most
    MAX_COLS (ink beyond is left out)."""
    pos, real = pen_positions(x, lengths, std)
    px = pos[..., 0]
    big = torch.finfo(px.dtype).max
    lo = torch.where(real, px, big).amin(1)
    hi = torch.where(real, px, -big).amax(1)
    cols = ((hi - lo).clamp(min=0) * px_per_unit).nan_to_num(0.0).clamp(max=MAX_COLS).ceil().long()
    return (cols + 2 * PAD + 1).clamp(MIN_COLS, MAX_COLS)


def rasterise(x: torch.Tensor, lengths: torch.Tensor, std, height: int, px_per_unit: float,
              width: int | None = None) -> torch.Tensor:
    """Offsets x (B, T, 3) (dx, dy normalised by std, pen-up 1 on a stroke's last
    point), lengths (B,) -> ink pictures (B, 1, height, W), values in [0, 1], W
    the widest line's raster_widths (or `width`, the widest of those the caller has)."""
    B, T, _ = x.shape
    pos, real = pen_positions(x, lengths, std)  # (B, T, 2), (B, T)
    big = torch.finfo(pos.dtype).max
    left = torch.where(real, pos[..., 0], big).amin(1)  # (B,)
    # Segment t joins point t to t + 1 where t is not a stroke's last point and t + 1 is real.
    seg = real[:, 1:] & (x[:, :-1, 2] < 0.5)  # (B, T-1)
    mid = _ink_median(pos, real, seg)  # (B,)
    col = (pos[..., 0] - left[:, None]) * px_per_unit + PAD  # (B, T)
    row = height / 2 - (pos[..., 1] - mid[:, None]) * px_per_unit  # y up in data units, rows down
    if width is None:
        widths = raster_widths(x, lengths, std, px_per_unit)
        width = int(widths.max()) if len(widths) else MIN_COLS
    W = int(width)
    frac = torch.arange(SAMPLES, device=x.device, dtype=col.dtype) / SAMPLES  # (S,)
    c = col[:, :-1, None] + (col[:, 1:, None] - col[:, :-1, None]) * frac  # (B, T-1, S)
    r = row[:, :-1, None] + (row[:, 1:, None] - row[:, :-1, None]) * frac
    on = seg[..., None].expand_as(c)
    # Every real point also on its own (a dot drawn as one point, a stroke's last point).
    c = torch.cat([c.reshape(B, -1), col], 1)  # (B, N)
    r = torch.cat([r.reshape(B, -1), row], 1)
    on = torch.cat([on.reshape(B, -1), real], 1)
    img = torch.zeros(B * height * W, device=x.device)
    c0, r0 = c.floor(), r.floor()
    fc, fr = c - c0, r - r0
    b = torch.arange(B, device=x.device)[:, None].expand_as(c)
    for dr, dc, w in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
        rr, cc = r0.long() + dr, c0.long() + dc
        ok = on & (rr >= 0) & (rr < height) & (cc >= 0) & (cc < W)
        img.scatter_reduce_(0, (b * height * W + rr * W + cc)[ok], w[ok], reduce="amax")
    img = img.view(B, 1, height, W)
    return F.max_pool2d(img, 3, stride=1, padding=1)


def _ink_median(pos: torch.Tensor, real: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
    """Each line's median height of ink (B,): the median of its pen-down segments'
    mid-heights weighted by their lengths, so that it does not depend on how densely
    the pen was sampled; a line without a segment (dots only): the median of its points."""
    mids = (pos[:, 1:, 1] + pos[:, :-1, 1]) / 2  # (B, T-1)
    w = torch.where(seg, (pos[:, 1:] - pos[:, :-1]).norm(dim=-1), torch.zeros((), device=pos.device))
    order = mids.argsort(1)
    cum = w.gather(1, order).cumsum(1)  # (B, T-1)
    half = cum[:, -1:] / 2
    k = (cum < half).sum(1, keepdim=True).clamp(max=max(mids.shape[1] - 1, 0))
    weighted = mids.gather(1, order).gather(1, k).squeeze(1) if mids.shape[1] else pos.new_zeros(len(pos))
    y = torch.where(real, pos[..., 1], torch.full_like(pos[..., 1], float("nan")))
    plain = torch.nanmedian(y, 1).values.nan_to_num(0.0)
    return torch.where(cum[:, -1] > 0, weighted, plain) if mids.shape[1] else plain
