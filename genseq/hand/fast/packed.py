"""y = x Wᵀ + b for inference, with W prepacked for oneDNN where that is faster.

Sampling runs one small matmul per layer and step (x: (B, in) with B of 1 to
64 rows); it is bound by reading W. A bf16 `F.linear` on CPU goes to oneDNN,
which converts W into its blocked layout on every call; `_reorder_linear_weight`
does that once, with bit-identical results (the speed-up is measured in
bench/README.md). fp32 is left to `F.linear` (MKL): prepacking it is slower
at B=1 and not bit-identical.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

BATCH_HINT = 8  # the rows oneDNN lays W out for; other batch sizes use the same layout


class FusedLinear:
    """A frozen linear map: weight (out, in), bias (out,); call with x (B, in) of weight's dtype."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        self.weight, self.bias = weight, bias
        self.dtype = weight.dtype
        self._packed = _pack(weight, bias)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        # x (B, in) -> (B, out)
        if self._packed is not None:
            return torch.ops.mkldnn._linear_pointwise(x, self._packed, self.bias, "none", [], "")
        return F.linear(x, self.weight, self.bias)


def _pack(weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor | None:
    """The oneDNN layout of a bf16 CPU weight, or None where it is not available or disagrees."""
    if weight.device.type != "cpu" or weight.dtype != torch.bfloat16 or not torch.backends.mkldnn.is_available():
        return None
    try:
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, BATCH_HINT)
        probe = torch.linspace(-1.0, 1.0, 2 * weight.shape[1]).view(2, -1).to(weight.dtype)  # (2, in)
        got = torch.ops.mkldnn._linear_pointwise(probe, packed, bias, "none", [], "")
    except (RuntimeError, AttributeError):  # a build without these private ops
        return None
    want = F.linear(probe, weight, bias)
    return packed if torch.allclose(got.float(), want.float(), rtol=1e-2, atol=1e-2) else None
