"""Weight-space blending of a fine-tuned model with the model it started from.

Wortsman et al. 2022, "Robust fine-tuning of zero-shot models" (WiSE-FT), eq. 1:
theta(a) = a * theta_tuned + (1 - a) * theta_start. Fine-tuned on a few dozen
lines of one writer, a model takes on the hand but loses some legibility; an
eighth of the way (a = 0.125, the default of `train handwriting --blend`) keeps
most of the hand and most of the legibility (docs/your-handwriting.md has the
measurements).
"""
from __future__ import annotations

import torch


def blend_weights(tuned: dict[str, torch.Tensor], start: dict[str, torch.Tensor], a: float) -> dict[str, torch.Tensor]:
    """a * tuned + (1 - a) * start, tensor by tensor. A tensor the fine-tune grew
    (e.g. an LSTM input matrix with a column per new character, (4H, in_new) against
    start's (4H, in_old)) blends its leading block and keeps the grown part as tuned;
    tensors start lacks, and integer tensors, stay as tuned."""
    if not 0.0 <= a <= 1.0:
        raise ValueError(f"blend factor {a} is outside [0, 1]")
    out = {}
    for name, t in tuned.items():
        s = start.get(name)
        if a == 1.0 or s is None or not t.is_floating_point() or s.dim() != t.dim() \
                or any(ds > dt for ds, dt in zip(s.shape, t.shape)):
            out[name] = t
            continue
        lead = tuple(slice(0, d) for d in s.shape)
        b = t.clone()
        b[lead] = a * t[lead] + (1.0 - a) * s.to(t.dtype).to(t.device)
        out[name] = b
    return out
