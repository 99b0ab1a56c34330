"""Handwriting prediction and synthesis networks (Graves 2013 sections 4 and 5).

Both are stacks of L LSTM layers with skip connections: the input x_t goes to
every layer and every layer goes to the mixture output (eqs. 1-3, 17). The
synthesis network adds a soft window over the one-hot text c (B, U, V):
layer 1 sees w_{t-1}, the window reads layer 1's output h¹_t, and w_t goes to
layers 2..L at step t (eqs. 46-53).

Two implementations that the tests hold equal:
- `step`: one time step through all layers (sampling; the naive reference).
- `forward`: training speed. Each layer's input projection is one matmul over
  the whole sequence; the recurrences run in `fast/recurrent.py` with hand-written
  backward passes (on a GPU, layers that do not feed back run as cuDNN
  `nn.LSTM`). Layers 2..L never feed back into layer 1, so only layer 1 and
  the window loop together.

Every layer is an `nn.LSTM` module (gate order i, f, g, o) so parameter names
are stable: lstms.{n}.weight_ih_l0 etc. The modules hold the weights; only
the cuDNN path calls them.
Input column order: layer 1 [x (3), w (V)]; layer n ≥ 2 [x (3), h^{n-1} (H), w (V)].
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..configs import checked_config
from ..errors import GenseqError
from .mdn import MDNParams, MixtureOutput
from .fast.packed import FusedLinear
from .fast.recurrent import WindowState, WindowWeights, lstm_layer, window_exp, window_layer

KINDS = ("prediction", "synthesis")


@dataclass(frozen=True)
class HandwritingConfig:
    """Everything needed to rebuild a handwriting model; stored in checkpoints as a dict."""

    kind: str = "synthesis"  # "prediction" (section 4) or "synthesis" (section 5)
    alphabet: str = ""  # synthesis: characters with ids 1..V (0 = padding)
    hidden: int = 400  # H, per layer
    layers: int = 3  # L
    mixtures: int = 20  # K
    window: int = 10  # M, window Gaussians (synthesis)
    norm_mean: tuple[float, float] = (0.0, 0.0)  # (dx, dy) mean the data was shifted by
    norm_std: tuple[float, float] = (1.0, 1.0)  # (dx, dy) std the data was divided by

    def __post_init__(self):
        if self.kind not in KINDS:
            raise GenseqError(f"unknown handwriting model kind {self.kind!r} (want one of {KINDS})")
        if self.kind == "synthesis" and not self.alphabet:
            raise GenseqError("a synthesis model needs a non-empty alphabet")
        if len(set(self.alphabet)) != len(self.alphabet):
            raise GenseqError("alphabet has repeated characters")
        if min(self.hidden, self.layers, self.mixtures, self.window) < 1:
            raise GenseqError("hidden, layers, mixtures and window must all be >= 1")
        # Accept lists (from JSON) but store tuples so the config stays hashable.
        object.__setattr__(self, "norm_mean", tuple(float(v) for v in self.norm_mean))
        object.__setattr__(self, "norm_std", tuple(float(v) for v in self.norm_std))

    @property
    def vocab_size(self) -> int:
        """V: one-hot width (synthesis); 0 for prediction."""
        return len(self.alphabet) if self.kind == "synthesis" else 0

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["norm_mean"] = list(self.norm_mean)
        d["norm_std"] = list(self.norm_std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "HandwritingConfig":
        """A config from a model file's dict (configs.checked_config)."""
        return checked_config(cls, d, "handwriting", positive=("norm_std",))


def encode_text(text: str, alphabet: str) -> torch.Tensor:
    """Character ids (U,) long: alphabet[i] -> i + 1; 0 is reserved for padding."""
    index = {ch: i + 1 for i, ch in enumerate(alphabet)}
    missing = sorted({ch for ch in text if ch not in index})
    if missing:
        raise GenseqError(f"characters not in the model's alphabet: {''.join(missing)!r}")
    return torch.tensor([index[ch] for ch in text], dtype=torch.long)


def pad_texts(texts: list[str], alphabet: str, extra: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode and right-pad texts: ids (B, U + extra) long, mask (B, U + extra) float."""
    ids = [encode_text(t, alphabet) for t in texts]
    U = max((len(i) for i in ids), default=0) + extra
    out = torch.zeros(len(ids), U, dtype=torch.long)
    for b, i in enumerate(ids):
        out[b, : len(i)] = i
    return out, (out > 0).float()


class HandState(NamedTuple):
    """Recurrent state carried across calls (training chunks, priming -> sampling)."""

    h: torch.Tensor  # (L, B, H)
    c: torch.Tensor  # (L, B, H)
    kappa: torch.Tensor | None  # (B, M) window positions (synthesis), else None
    window: torch.Tensor | None  # (B, V) last window vector w_t (synthesis), else None

    def detach(self) -> "HandState":
        return HandState(*(None if t is None else t.detach() for t in self))


def _lstm_pointwise(gates: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # gates: (B, 4H) pre-activations in nn.LSTM order (i, f, g, o); Graves 2013 eqs. 7-11.
    # One sigmoid over all four blocks (the g block's is unused) and an addcmul:
    # 6 kernels instead of 9; the per-step loops are bound by kernel count, not flops.
    H = c.shape[1]
    i, f, _, o = torch.sigmoid(gates).chunk(4, dim=1)
    c = torch.addcmul(f * c, i, torch.tanh(gates[:, 2 * H : 3 * H]))
    h = o * torch.tanh(c)
    return h, c


class HandwritingModel(nn.Module):
    """Graves 2013 handwriting network; `config.kind` picks prediction or synthesis."""

    def __init__(self, config: HandwritingConfig):
        super().__init__()
        self.config = config
        H, L, V = config.hidden, config.layers, config.vocab_size
        self.synthesis = config.kind == "synthesis"
        in1 = 3 + V  # layer 1: x_t and w_{t-1}
        inn = 3 + H + V  # layer n: x_t, h^{n-1}_t and w_t
        self.lstms = nn.ModuleList(
            [nn.LSTM(in1 if n == 0 else inn, H, batch_first=True) for n in range(L)]
        )
        if self.synthesis:
            # Graves 2013 eq. 48: (α̂, β̂, κ̂) = W h¹_t + b, M of each.
            self.window_layer = nn.Linear(H, 3 * config.window)
            # Eq. 51 with κ̂'s bias started at log(0.1): at first the window moves
            # about a tenth of a character per point (IAM-OnDB has 10-20 points
            # per character) rather than a whole one, so it does not race past
            # the text before alignment is learnt.
            with torch.no_grad():
                self.window_layer.bias[2 * config.window:].fill_(math.log(0.1))
        self.output = MixtureOutput(L * H, config.mixtures)
        # Dropout on each layer's outputs where they feed the next layer and the
        # mixture output (not inside a recurrence, nor into the window), while
        # training only (Zaremba et al. 2014): a training option, not part of the
        # network, so model files do not hold it.
        self.dropout = 0.0

    # -- helpers ---------------------------------------------------------
    def one_hot(self, text_ids: torch.Tensor) -> torch.Tensor:
        """(B, U) ids -> (B, U, V) float one-hot; padding (id 0) rows are all zero."""
        V = self.config.vocab_size
        dtype = self._state_dtype()
        return F.one_hot(text_ids, V + 1)[..., 1:].to(dtype)

    def _state_dtype(self) -> torch.dtype:
        # fp32 (or fp64) even for a bf16 model: κ grows to U and c integrates over
        # hundreds of steps, which bf16's 8-bit mantissa cannot follow.
        return torch.promote_types(self.lstms[0].weight_ih_l0.dtype, torch.float32)

    def initial_state(self, batch: int) -> HandState:
        p = self.lstms[0].weight_ih_l0
        L, H, dtype = self.config.layers, self.config.hidden, self._state_dtype()
        z = p.new_zeros(L, batch, H, dtype=dtype)
        if not self.synthesis:
            return HandState(z, z.clone(), None, None)
        kappa = p.new_zeros(batch, self.config.window, dtype=dtype)
        return HandState(z, z.clone(), kappa, p.new_zeros(batch, self.config.vocab_size, dtype=dtype))

    def _window(self, h1, kappa, text, positions):
        # h1 (B, H), kappa (B, M), text (B, U, V), positions (U,) = 1..U
        # -> w (B, V), phi (B, U), kappa (B, M)
        p = self.window_layer(h1)
        p = p.to(torch.promote_types(p.dtype, torch.float32))  # fp32 even under autocast
        M = kappa.shape[1]
        a_hat = p[:, :M].unsqueeze(2)  # (B, M, 1)
        beta, step = torch.exp(p[:, M:]).unsqueeze(2).chunk(2, dim=1)  # eqs. 50-51, one exp: (B, M, 1)
        kappa = kappa + step.squeeze(2)  # eq. 51: the window only moves forward
        d = kappa.unsqueeze(2) - positions  # (B, M, U)
        # eq. 46 with α = exp(α̂) (eq. 49) folded into the exp: exp(α̂ - β d²).
        phi = window_exp(torch.addcmul(a_hat, beta, d * d, value=-1.0)).sum(dim=1)  # (B, U)
        w = torch.bmm(phi.unsqueeze(1).to(text.dtype), text).squeeze(1)  # eq. 47: (B, V)
        return w, phi, kappa

    def _positions(self, U: int, device) -> torch.Tensor:
        return torch.arange(1, U + 1, device=device, dtype=self._state_dtype())

    # -- one step: sampling and the naive reference ----------------------
    def fused_weights(self, dtype: torch.dtype | None = None) -> list[FusedLinear]:
        """Per layer, [W_ih | W_hh] (4H, in + H) and b_ih + b_hh (4H,) as one map for `step(fused=...)`.

        One matmul per layer and step instead of two; with dtype=torch.bfloat16
        the step streams half the bytes (sampling a few lines is bound by
        reading weights), prepacked for oneDNN on CPU (fast/packed.py). Recompute
        after changing the parameters.
        """
        out = []
        for lstm in self.lstms:
            w = torch.cat((lstm.weight_ih_l0, lstm.weight_hh_l0), 1).detach()
            b = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach()
            out.append(FusedLinear(w.to(dtype or w.dtype), b.to(dtype or b.dtype)))
        return out

    def step(
        self,
        x_t: torch.Tensor,
        state: HandState,
        text: torch.Tensor | None = None,
        fused: list[FusedLinear] | None = None,
    ) -> tuple[MDNParams, HandState, torch.Tensor | None]:
        """One time step through all layers.

        x_t: (B, 3); text: (B, U, V) one-hot from `one_hot` (synthesis only; extra
        all-zero rows past the end are allowed and get φ like any position).
        fused: from `fused_weights` (inference only); the LSTM matmuls then run
        in its dtype while the state, window and mixture maths stay fp32.
        Returns MDN params with leading dim (B,), the new state, φ (B, U) or None.
        """
        hs, cs, phi = [], [], None
        w, kappa = state.window, state.kappa
        below = None
        for n, lstm in enumerate(self.lstms):
            if n == 0:
                parts = (x_t, w) if self.synthesis else (x_t,)
            else:
                parts = (x_t, below, w) if self.synthesis else (x_t, below)
            if fused is None:
                gates = F.linear(torch.cat(parts, 1), lstm.weight_ih_l0, lstm.bias_ih_l0) + F.linear(
                    state.h[n], lstm.weight_hh_l0, lstm.bias_hh_l0
                )
            else:
                gates = fused[n](torch.cat((*parts, state.h[n]), 1).to(fused[n].dtype))
            h, c = _lstm_pointwise(gates.to(state.c.dtype), state.c[n])
            if n == 0 and self.synthesis:
                positions = self._positions(text.shape[1], text.device)
                w, phi, kappa = self._window(h, kappa, text, positions)
                w = w.to(h.dtype)
            hs.append(h)
            cs.append(c)
            below = h
        params = self.output(torch.cat(hs, 1))
        return params, HandState(torch.stack(hs), torch.stack(cs), kappa, w), phi

    # -- fast forward for training ---------------------------------------
    def forward(
        self,
        x: torch.Tensor,
        text_ids: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        state: HandState | None = None,
    ) -> tuple[MDNParams, HandState, dict]:
        """x: (B, T, 3) normalised points; text_ids/text_mask: (B, U) (synthesis).

        Returns MDN params with leading dims (B, T), the final state, and extras:
        synthesis {"phi": (B, T, U) window weights (zero on padding),
        "kappa": (B, T, M)}; prediction {}. The final state's window and κ are
        not differentiable (training detaches the state between chunks anyway).
        """
        B, T, _ = x.shape
        if state is None:
            state = self.initial_state(B)
        if self.synthesis and text_ids is None:
            raise GenseqError("the synthesis model needs text")
        mm = self._mm_dtype(x)
        xf = x.permute(2, 1, 0)  # (3, T, B): sequences run feature-major (see fast/recurrent.py)
        hs, cn, side, extras, kappa_t, w_t = [], [], (), {}, None, None
        if self.synthesis:
            # Layer 1 + window, step by step (w_{t-1} feeds h¹_t: no way round the loop).
            lstm, win = self.lstms[0], self.window_layer
            weights = WindowWeights(lstm.weight_ih_l0, lstm.bias_ih_l0 + lstm.bias_hh_l0, lstm.weight_hh_l0,
                                    win.weight, win.bias)
            start = WindowState(state.h[0], state.c[0], state.kappa, state.window)
            h1, w_seq, phi, kappa, c1 = window_layer(xf, weights, self.one_hot(text_ids), start, mm)
            hs, cn, side = [h1], [c1], (w_seq,)
            phi = phi.transpose(0, 1)  # (B, T, U)
            if text_mask is not None:
                phi = phi * text_mask.unsqueeze(1).to(phi.dtype)
            extras = {"phi": phi, "kappa": kappa.transpose(0, 1)}
            kappa_t, w_t = kappa[-1], w_seq[:, -1].t().to(c1.dtype)
        # Layers that never feed back into an earlier one: one call over the whole sequence.
        fed = [self._drop(h) for h in hs]  # what the layers pass on (H, T, B) each
        for n in range(len(hs), self.config.layers):
            parts = [xf, fed[-1], *side] if fed else [xf]  # (3 [+ H + V], T, B) in pieces
            out, c = self._layer(n, parts, state.h[n], state.c[n], mm)
            hs.append(out)
            fed.append(self._drop(out))
            cn.append(c)
        params = self.output.from_features(fed)  # (B, T, ...)
        h_t = torch.stack([h[:, -1].t() for h in hs]).to(cn[0].dtype)
        return params, HandState(h_t, torch.stack(cn), kappa_t, w_t), extras

    def _drop(self, h: torch.Tensor) -> torch.Tensor:
        return F.dropout(h, self.dropout, training=True) if self.training and self.dropout > 0 else h

    def _mm_dtype(self, x: torch.Tensor) -> torch.dtype:
        dev = x.device.type
        if torch.is_autocast_enabled(dev):
            return torch.get_autocast_dtype(dev)
        return self.lstms[0].weight_ih_l0.dtype

    def _layer(self, n, parts, h0, c0, mm):
        # parts [(I_k, T, B)] -> hs (H, T, B), c_T (B, H).
        lstm = self.lstms[n]
        if parts[0].is_cuda:
            # cuDNN's fused LSTM beats a per-step loop on a GPU.
            inp = torch.cat([x.to(mm) for x in parts], 0).permute(2, 1, 0)  # (B, T, I)
            out, (_, c) = lstm(inp, (h0.unsqueeze(0), c0.unsqueeze(0)))
            return out.permute(2, 1, 0), c[0]
        # On CPU: the input projection as one large matmul per piece, then the
        # recurrence with its hand-written backward (see fast/recurrent.py).
        return lstm_layer(parts, lstm.weight_ih_l0, lstm.bias_ih_l0 + lstm.bias_hh_l0, lstm.weight_hh_l0,
                          h0, c0, mm)
