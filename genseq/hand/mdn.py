"""Mixture density output layer for pen offsets (Graves 2013 section 4.1).

A point is (dx, dy, eos): dx, dy real (normalised by the caller), eos = 1 at
the last point of a stroke. The network predicts a Bernoulli for eos and a
mixture of K bivariate Gaussians for (dx, dy), Graves 2013 eqs. 18-26.

Conventions that differ from the paper, on purpose:
- `eos_logit` is the logit of P(eos = 1), so e = sigmoid(eos_logit); Graves
  eq. 19 writes e = 1 / (1 + exp(ê)), the same thing with ê = -eos_logit.
- log σ has a smooth floor (MIN_LOG_SIGMA) and ρ is scaled by (1 - RHO_EPS):
  a component can otherwise collapse onto a quantised training point and
  give an infinite density; both keep gradients alive (no hard clamp).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

MIN_LOG_SIGMA = -6.0  # σ ≥ ~0.0025 of the data's std
RHO_EPS = 1e-4  # |ρ| ≤ 0.9999, so 1 - ρ² ≥ 2e-4
_LOG_2PI = math.log(2.0 * math.pi)


class MDNParams(NamedTuple):
    """Mixture parameters; leading dims are (B, T) in training, (B,) when sampling."""

    eos_logit: torch.Tensor  # (...)      logit of P(end of stroke)
    log_pi: torch.Tensor  # (..., K)      log mixture weights (log-softmax)
    mu1: torch.Tensor  # (..., K)
    mu2: torch.Tensor  # (..., K)
    log_sigma1: torch.Tensor  # (..., K)
    log_sigma2: torch.Tensor  # (..., K)
    rho: torch.Tensor  # (..., K)         correlation in (-1, 1)


def mdn_params(y: torch.Tensor, mixtures: int) -> MDNParams:
    """Split raw network outputs y (..., 1 + 6K) into MDNParams (Graves 2013 eqs. 18-22)."""
    K = mixtures
    eos, pi_hat, mu1, mu2, s1, s2, rho_hat = torch.split(y, [1, K, K, K, K, K, K], dim=-1)
    return MDNParams(
        eos_logit=eos.squeeze(-1),
        log_pi=torch.log_softmax(pi_hat, dim=-1),  # eq. 19
        mu1=mu1,  # eq. 20
        mu2=mu2,
        # eq. 21 (σ = exp σ̂) with a smooth floor: softplus ≈ identity well above it.
        log_sigma1=MIN_LOG_SIGMA + F.softplus(s1 - MIN_LOG_SIGMA),
        log_sigma2=MIN_LOG_SIGMA + F.softplus(s2 - MIN_LOG_SIGMA),
        rho=torch.tanh(rho_hat) * (1.0 - RHO_EPS),  # eq. 22
    )


class MixtureOutput(nn.Module):
    """Linear layer from the concatenated hidden states to 1 + 6K outputs (Graves 2013 eq. 17)."""

    def __init__(self, in_features: int, mixtures: int):
        super().__init__()
        self.mixtures = mixtures
        self.linear = nn.Linear(in_features, 1 + 6 * mixtures)

    def forward(self, h: torch.Tensor) -> MDNParams:
        # h: (..., L*H) -> MDNParams with leading dims (...)
        return self._params(self.linear(h))

    def from_features(self, hs: list[torch.Tensor]) -> MDNParams:
        """hs: per layer (H, T, B) feature-major sequences -> MDNParams with leading dims (B, T).

        W [h¹; ...; hᴸ] as Σ_n W_n hⁿ: no concatenated copy of every layer's
        output is made and kept for the backward pass.
        """
        _, T, B = hs[0].shape
        y = self.linear.bias.unsqueeze(1)
        for w, h in zip(self.linear.weight.split([h.shape[0] for h in hs], 1), hs):
            y = torch.addmm(y, w, h.reshape(h.shape[0], T * B))
        return self._params(y.view(-1, T, B).permute(2, 1, 0).contiguous())

    def _params(self, y: torch.Tensor) -> MDNParams:
        # The mixture maths runs in fp32 (or fp64) even under autocast.
        return mdn_params(y.to(torch.promote_types(y.dtype, torch.float32)), self.mixtures)


def mdn_nll(params: MDNParams, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-point negative log-likelihood (Graves 2013 eqs. 23-26), in fp32 or fp64.

    target: (B, T, 3) = (dx, dy, eos) at the next step; mask: (B, T), 0 = padding.
    Returns (B, T), zero where masked. The density is over *normalised* dx, dy:
    to report nats in data units add sum(log norm_std) per real point.
    """
    device_type = target.device.type
    with torch.autocast(device_type=device_type, enabled=False):
        dtype = torch.promote_types(target.dtype, torch.float32)
        p = MDNParams(*(t.to(dtype) for t in params))
        x1 = target[..., 0:1].to(dtype)  # (B, T, 1)
        x2 = target[..., 1:2].to(dtype)
        eos = target[..., 2].to(dtype)  # (B, T)
        if mask is not None:
            # Padding may hold anything; keep it out of the maths, not just the sum.
            keep = mask.to(torch.bool)
            x1 = torch.where(keep.unsqueeze(-1), x1, p.mu1.detach())
            x2 = torch.where(keep.unsqueeze(-1), x2, p.mu2.detach())
            eos = torch.where(keep, eos, torch.zeros_like(eos))
        z1 = (x1 - p.mu1) * torch.exp(-p.log_sigma1)  # (B, T, K)
        z2 = (x2 - p.mu2) * torch.exp(-p.log_sigma2)
        one_m_rho2 = 1.0 - p.rho * p.rho
        # eq. 25: Z = z1² + z2² - 2ρ z1 z2; eq. 24: log N(x | μ, σ, ρ)
        Z = z1 * z1 + z2 * z2 - 2.0 * p.rho * z1 * z2
        log_n = (
            -_LOG_2PI - p.log_sigma1 - p.log_sigma2 - 0.5 * torch.log(one_m_rho2)
            - Z / (2.0 * one_m_rho2)
        )
        # eq. 26, in log space: logsumexp over the K components.
        nll_xy = -torch.logsumexp(p.log_pi + log_n, dim=-1)  # (B, T)
        nll_eos = F.binary_cross_entropy_with_logits(p.eos_logit, eos, reduction="none")
        nll = nll_xy + nll_eos
        if mask is not None:
            nll = nll * mask.to(dtype)
        return nll


def mdn_sample(params: MDNParams, bias: float | torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Draw one point per row from params with leading dim (B,); returns (B, 3).

    Graves 2013 section 5.4 bias b ≥ 0: π ∝ softmax(π̂ (1 + b)) (eq. 61) and
    σ = exp(σ̂ - b) (eq. 62); b = 0 is the unbiased model. eos is not biased.
    bias: one for all rows, or (B,) one per row.
    """
    B, K = params.log_pi.shape
    race = params.log_pi.new_empty(B, K, dtype=torch.float32).exponential_(1.0, generator=generator)  # (B, K)
    noise = torch.randn(B, 3, generator=generator, device=race.device)  # (B, 3)
    # Bernoulli via the normal CDF of the third draw: one RNG call for the three.
    u = 0.5 * (1.0 + torch.erf(noise[:, 2] / math.sqrt(2.0)))
    return mdn_draw(params, bias, race, noise[:, :2], u)


def mdn_draw(params: MDNParams, bias: float | torch.Tensor, race: torch.Tensor, z: torch.Tensor,
             u: torch.Tensor) -> torch.Tensor:
    """mdn_sample from given random numbers: race (B, K) ~ Exp(1), z (B, 2) ~ N(0, 1), u (B,) ~ U(0, 1)."""
    p = MDNParams(*(t.float() for t in params))
    if isinstance(bias, torch.Tensor):  # (B,) a bias per row
        bias = bias.to(device=p.log_pi.device, dtype=torch.float32)
        scale = (1.0 + bias).unsqueeze(1)  # (B, 1)
    else:
        scale = 1.0 + bias
    # (1 + b) · log π differs from (1 + b) · π̂ by a per-row constant: same softmax.
    probs = torch.softmax(p.log_pi * scale, dim=-1)  # (B, K)
    # k ~ Categorical(probs) as argmax_k probs_k / E_k with E_k ~ Exp(1) (the exponential
    # race; what torch.multinomial does for one draw, without its checks that wait on the values).
    # A NaN in probs wins the argmax here (multinomial raised); NaN weights elsewhere make
    # NaN points, which callers check (a NaN π̂ alone can leave the points finite).
    k = (probs.detach() / race).argmax(dim=1, keepdim=True)  # (B, 1)
    comp = torch.stack((p.mu1, p.mu2, p.log_sigma1, p.log_sigma2, p.rho), dim=1)  # (B, 5, K)
    mu1, mu2, ls1, ls2, rho = comp.gather(2, k.unsqueeze(1).expand(-1, 5, 1)).squeeze(2).unbind(1)
    s1 = torch.exp(ls1 - bias)
    s2 = torch.exp(ls2 - bias)
    z1, z2 = z[:, 0], z[:, 1]
    dx = mu1 + s1 * z1
    dy = mu2 + s2 * (rho * z1 + torch.sqrt(1.0 - rho * rho) * z2)
    pen = (u < torch.sigmoid(p.eos_logit)).to(dx.dtype)
    return torch.stack((dx, dy, pen), dim=1)
