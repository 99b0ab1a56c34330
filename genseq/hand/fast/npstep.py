"""Sampling steps on the CPU: numpy for the small maths, oneDNN/MKL for the matmuls.

A sampling step at batch sizes of 1 to 64 is bound by calls, not by
arithmetic: `HandwritingModel.step` plus `mdn.mdn_sample` make about 85
tensor calls per step, and a torch call on a few thousand numbers costs
several times what a numpy ufunc does. `NumpyStep` does the
same step (Graves 2013 eqs. 7-11, 46-53, 17-22 and the draw of section 5.4)
with the LSTM, window and mixture maths in numpy on preallocated buffers; the
matmuls stay in torch (the prepacked bf16 weights of packed.py, or fp32),
with numpy arrays and torch tensors sharing memory both ways
(`torch.from_numpy`, `Tensor.numpy`). Measured in bench/README.md
("Sampling on the CPU in numpy").

It computes what `model.step` computes to float32 rounding (tests hold them
equal) and draws what `mdn.mdn_draw` draws from the same random numbers; the
random numbers come from a numpy Generator, so a seed writes other lines
than the torch step (used on a GPU, or with `ENABLED = False`).

No numpy matmul runs here: numpy's BLAS threads would spin against torch's
and slow both down.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from ..mdn import MIN_LOG_SIGMA, RHO_EPS
from ..model import HandState, HandwritingModel
from .packed import FusedLinear
from .recurrent import EXP_FLOOR

ENABLED = os.environ.get("GENSEQ_NUMPY_STEP", "1") != "0"  # GENSEQ_NUMPY_STEP=0: the torch step everywhere
_F = np.float32


def usable(model: HandwritingModel) -> bool:
    """NumpyStep handles float32 models on the CPU (others take the torch step)."""
    p = model.lstms[0].weight_ih_l0
    return ENABLED and p.device.type == "cpu" and p.dtype == torch.float32


class NumpyStep:
    """One sampling step: (x (B, 3), state) -> (next point (B, 3), new state, φ (B, U) or None).

    fused: `model.fused_weights(...)`; text: (B, U, V) one-hot (synthesis) or
    None; rng: draws the points. char_bias: None, or (sharp (B, U) bool, b):
    the rows whose window attends most to a sharp position draw with bias b
    (sample.char_bias_rows). Returned tensors share memory with fresh numpy
    arrays: the state passed in is never written (callers keep it).
    """

    def __init__(self, model: HandwritingModel, fused: list[FusedLinear], text: torch.Tensor | None,
                 bias: float, rng: np.random.Generator, char_bias: tuple[torch.Tensor, float] | None = None):
        config = model.config
        self.L, self.H, self.V, self.K = config.layers, config.hidden, config.vocab_size, config.mixtures
        self.fused, self.bias, self.rng = fused, float(bias), rng
        self.char_bias = None if char_bias is None else (char_bias[0].cpu().numpy(), float(char_bias[1]))
        self.synthesis = model.synthesis
        with torch.no_grad():
            out = model.output.linear
            self.w_out, self.b_out = out.weight.detach().t(), out.bias.detach()  # (L*H, 1+6K), (1+6K,)
            if self.synthesis:
                win = model.window_layer
                self.w_win, self.b_win = win.weight.detach().t(), win.bias.detach()  # (H, 3M), (3M,)
                self.text = text.float().numpy()  # (B, U, V)
                self.pos = np.arange(1, text.shape[1] + 1, dtype=_F)  # (U,)
        self._bufs: dict | None = None

    def _buffers(self, B: int) -> dict:
        # Per layer: the matmul's input [x, h^{n-1}, w, h^n] (B, in + H) and its
        # output (B, 4H), in fp32 (numpy views) and, for bf16 weights, bf16.
        if self._bufs is None or self._bufs["B"] != B:
            L, H = self.L, self.H
            ins = [f.weight.shape[1] for f in self.fused]
            inp = [torch.zeros(B, i) for i in ins]
            gates = [torch.zeros(B, 4 * H) for _ in ins]
            low = [f.dtype != torch.float32 for f in self.fused]
            self._bufs = dict(
                B=B, inp=inp, inp_np=[t.numpy() for t in inp],
                inp_low=[torch.zeros(B, i, dtype=f.dtype) if lo else None for i, f, lo in zip(ins, self.fused, low)],
                gates=gates, gates_np=[t.numpy() for t in gates],
                tanh_g=np.zeros((B, H), _F), hcat=torch.zeros(B, L * H),
                y=torch.zeros(B, 1 + 6 * self.K), win=torch.zeros(B, self.w_win.shape[1]) if self.synthesis else None,
            )
        return self._bufs

    def __call__(self, x: torch.Tensor, state: HandState):
        with np.errstate(all="ignore"):  # broken weights give NaN points, as in torch: callers check them
            return self._step(x, state)

    def _step(self, x: torch.Tensor, state: HandState):
        B, H = x.shape[0], self.H
        s = self._buffers(B)
        xn = x.numpy()  # (B, 3)
        h_old, c_old = state.h.numpy(), state.c.numpy()  # (L, B, H)
        h, c = np.empty_like(h_old), np.empty_like(c_old)
        hcat = s["hcat"].numpy().reshape(B, self.L, H)  # (B, L, H) the mixture layer's input
        w = kappa = phi = None
        if self.synthesis:
            w, kappa = state.window.numpy(), state.kappa.numpy()  # (B, V), (B, M)
        for n in range(self.L):
            inp = s["inp_np"][n]  # (B, in + H): [x, h^{n-1}, w, h^n] as model.step orders them
            inp[:, :3] = xn
            col = 3
            if n:
                inp[:, col:col + H] = h[n - 1]
                col += H
            if self.synthesis:
                inp[:, col:col + self.V] = w
                col += self.V
            inp[:, col:] = h_old[n]
            low = s["inp_low"][n]
            z = self.fused[n](low.copy_(s["inp"][n]) if low is not None else s["inp"][n])  # (B, 4H)
            s["gates"][n].copy_(z)
            self._lstm(s["gates_np"][n], c_old[n], h[n], c[n], s["tanh_g"])
            if n == 0 and self.synthesis:
                w, kappa, phi = self._window(h[0], kappa, s["win"])
        hcat[:] = h.transpose(1, 0, 2)
        y = torch.addmm(self.b_out, s["hcat"], self.w_out, out=s["y"]).numpy()  # eq. 17: (B, 1 + 6K)
        # The race in float64: numpy's float32 exponential is exactly 0 about once in 6 million
        # draws, and -log 0 would pick its component however unlikely (torch's never is 0).
        bias = self.bias
        if self.char_bias is not None and phi is not None:
            sharp, b = self.char_bias
            hit = sharp[np.arange(B), phi.argmax(1)]  # (B,) rows attending most to a sharp character
            if hit.any():
                bias = np.where(hit, b, self.bias)  # (B,) float64
        x_new = self.draw(y, bias, self.rng.standard_exponential((B, self.K)),
                          self.rng.standard_normal((B, 2), dtype=_F), self.rng.random(B, dtype=_F))
        new = HandState(torch.from_numpy(h), torch.from_numpy(c),
                        None if kappa is None else torch.from_numpy(kappa),
                        None if w is None else torch.from_numpy(w))
        return torch.from_numpy(x_new), new, None if phi is None else torch.from_numpy(phi)

    @staticmethod
    def _lstm(g: np.ndarray, c_old: np.ndarray, h: np.ndarray, c: np.ndarray, tg: np.ndarray) -> None:
        # Graves 2013 eqs. 7-11 (nn.LSTM gate order i, f, g, o), g (B, 4H) overwritten.
        H = c.shape[1]
        np.tanh(g[:, 2 * H:3 * H], out=tg)
        np.negative(g, out=g)  # σ(a) = 1 / (1 + e^-a) over all four blocks (g's unused): fewer calls
        np.exp(g, out=g)
        g += 1.0
        np.reciprocal(g, out=g)
        np.multiply(g[:, H:2 * H], c_old, out=c)  # f c_{t-1}
        tg *= g[:, :H]  # i tanh(ĝ)
        c += tg
        np.tanh(c, out=h)
        h *= g[:, 3 * H:]

    def _window(self, h1: np.ndarray, kappa: np.ndarray, out: torch.Tensor):
        # Graves 2013 eqs. 46-51 as model._window: h1 (B, H), kappa (B, M) -> w (B, V), κ, φ (B, U)
        p = torch.addmm(self.b_win, torch.from_numpy(h1), self.w_win, out=out).numpy()  # eq. 48: (B, 3M)
        M = kappa.shape[1]
        e = np.exp(p[:, M:])  # eqs. 50-51: β, exp(κ̂)
        kappa = kappa + e[:, M:]  # eq. 51: the window only moves forward
        d = kappa[:, :, None] - self.pos  # (B, M, U)
        d *= d
        d *= e[:, :M, None]
        q = np.subtract(p[:, :M, None], d, out=d)  # α̂ - β d²: eq. 46 with α = exp(α̂) inside the exp
        np.maximum(q, EXP_FLOOR, out=q)  # recurrent.window_exp: far positions exactly 0
        np.exp(q, out=q)
        q -= _F(np.exp(EXP_FLOOR))
        phi = q.sum(1)  # (B, U)
        w = np.einsum("bu,buv->bv", phi, self.text)  # eq. 47
        return w, kappa, phi

    @staticmethod
    def draw(y: np.ndarray, bias: float | np.ndarray, race: np.ndarray, z: np.ndarray, u: np.ndarray) -> np.ndarray:
        """A point per row from raw outputs y (B, 1 + 6K), as `mdn.mdn_draw`.

        bias: one for all rows, or (B,) float64 one per row. race (B, K) ~ Exp(1)
        picks the component (the exponential race), z (B, 2) ~ N(0, 1) the
        offset, u (B,) ~ U(0, 1) the pen. Returns (B, 3) float32.
        """
        K = (y.shape[1] - 1) // 6
        per_row = isinstance(bias, np.ndarray)
        # Each row's factors rounded once to float32 from float64, as a single bias is:
        # a row drawn with bias b comes out the same whether the others share b or not.
        scale = (1.0 + bias).astype(_F)[:, None] if per_row else 1.0 + bias  # eq. 61's 1 + b
        shift = (MIN_LOG_SIGMA - bias).astype(_F) if per_row else _F(MIN_LOG_SIGMA - bias)  # eq. 62's -b
        # eq. 61, π ∝ softmax(π̂ (1 + b)), drawn by the race in logs (the Gumbel-max trick):
        # argmax_k π_k / E_k = argmax_k (1 + b) π̂_k - log E_k, no softmax needed.
        k = (y[:, 1:1 + K] * scale - np.log(race)).argmax(1)  # (B,), in race's precision
        mu1, mu2, s1, s2, rho = np.take_along_axis(y, k[:, None] + (1 + K + K * np.arange(5)), 1).T  # (B,) each
        # eq. 21's σ with mdn_params' smooth floor, then eq. 62: σ = exp(log σ - b)
        s = np.logaddexp(_F(0.0), np.stack((s1, s2)) - _F(MIN_LOG_SIGMA))
        s += shift
        np.exp(s, out=s)
        rho = np.tanh(rho) * _F(1.0 - RHO_EPS)  # eq. 22
        out = np.empty((y.shape[0], 3), _F)
        out[:, 0] = mu1 + s[0] * z[:, 0]
        out[:, 1] = mu2 + s[1] * (rho * z[:, 0] + np.sqrt(1.0 - rho * rho) * z[:, 1])
        out[:, 2] = u < _F(0.5) + _F(0.5) * np.tanh(_F(0.5) * y[:, 0])  # u < σ(eos_logit), no overflow; eos not biased
        return out
