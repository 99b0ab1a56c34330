"""How sure the reader is of each character: CTC scores of every one-character
substitution from one forward-backward pass.

The CTC score log p(text | strokes) (Graves et al. 2006) sums over paths
through the extended labels l' = (blank, l_1, blank, ..., l_U, blank),
states s = 0..2U. With the forward variables α_t(s) and the backward ones
β_t(s) (both including the emission at t; eqs. 5-10 of the paper), a path of
the text with l_j replaced by a symbol a enters state s* = 2j + 1 at some t1
(from s* - 1, or from s* - 2 when a differs from l_{j-1}), stays there while
emitting y_t(a), and leaves after t2 (to s* + 1, or to s* + 2 when a differs
from l_{j+1}); nothing before s* or after it depends on l_j. So

    p(l with l_j = a) = sum_{t1 <= t2} A(t1) prod_{t1..t2} y_t(a) B(t2),
    A(t1) = α_{t1-1}(s*-1) + [a != l_{j-1}] α_{t1-1}(s*-2),
    B(t2) = β_{t2+1}(s*+1) + [a != l_{j+1}] β_{t2+1}(s*+2),

which cumulative sums over t give for every a at once: O(T V) per position
after one O(T U) pass, where scoring each substituted text anew costs
O(T U) per symbol. Everything is in log space; numpy only.
"""
from __future__ import annotations

import numpy as np

NEG = -np.inf


def _lse(*xs: np.ndarray) -> np.ndarray:
    """log(sum(exp(x))) of arrays of one shape, -inf where all are -inf."""
    out = xs[0]
    for x in xs[1:]:
        out = np.logaddexp(out, x)
    return out


def _shift(a: np.ndarray, k: int) -> np.ndarray:
    """a (..., S) moved k states along the last axis, -inf filled: out[..., s] = a[..., s - k]."""
    out = np.full_like(a, NEG)
    if k > 0:
        out[..., k:] = a[..., :-k]
    else:
        out[..., :k] = a[..., -k:]
    return out


def forward_backward(logp: np.ndarray, n: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """α, β (B, T, S) of log-probs logp (B, T, V+1) (frames n (B,) real; blank 0) for one
    text ids (U,) of labels 1..V shared by every row; S = 2U + 1. Frames past a row's
    end are -inf in both."""
    B, T, _ = logp.shape
    U = len(ids)
    S = 2 * U + 1
    ext = np.zeros(S, np.int64)
    ext[1::2] = ids
    skip = np.zeros(S, bool)  # s - 2 -> s allowed: a character unlike the one before it
    skip[3::2] = ids[1:] != ids[:-1]
    y = logp[:, :, ext]  # (B, T, S) emissions
    alpha = np.full((B, T, S), NEG)
    alpha[:, 0, 0] = y[:, 0, 0]
    if S > 1:
        alpha[:, 0, 1] = y[:, 0, 1]
    for t in range(1, T):
        prev = alpha[:, t - 1]
        alpha[:, t] = _lse(prev, _shift(prev, 1), np.where(skip, _shift(prev, 2), NEG)) + y[:, t]
    alpha[np.arange(T)[None, :] >= n[:, None]] = NEG
    beta = np.full((B, T, S), NEG)
    last = np.full((B, S), NEG)  # β at each row's last frame
    end = np.minimum(n - 1, T - 1)
    last[:, S - 1] = y[np.arange(B), end, S - 1]
    if S > 1:
        last[:, S - 2] = y[np.arange(B), end, S - 2]
    skip_next = np.zeros(S, bool)  # s -> s + 2 allowed
    skip_next[:-2] = skip[2:]
    nxt = np.full((B, S), NEG)
    for t in range(T - 1, -1, -1):
        rec = _lse(nxt, _shift(nxt, -1), np.where(skip_next, _shift(nxt, -2), NEG)) + y[:, t]
        cur = np.where((t == end)[:, None], last, np.where((t < end)[:, None], rec, NEG))
        beta[:, t] = cur
        nxt = cur
    return alpha, beta


def substitution_scores(logp: np.ndarray, n: np.ndarray, ids: np.ndarray, positions: list[int]) -> np.ndarray:
    """log p(text with character j replaced by symbol v | strokes), (B, len(positions), V+1),
    for rows sharing one text ids (U,) (labels 1..V); column 0 (the blank) is -inf, and
    column ids[j] is the text's own score. logp (B, T, V+1), n (B,) as forward_backward."""
    logp = np.asarray(logp, np.float64)
    n = np.asarray(n, np.int64)
    ids = np.asarray(ids, np.int64)
    B, T, V1 = logp.shape
    U = len(ids)
    alpha, beta = forward_backward(logp, n, ids)
    real = np.arange(T)[None, :] < n[:, None]  # (B, T)
    y = np.where(real[:, :, None], logp, 0.0)  # frames past the end emit nothing: c stops growing
    c = np.concatenate([np.zeros((B, 1, V1)), np.cumsum(y, axis=1)], axis=1)  # (B, T+1, V+1): sum_{τ<t} y_τ
    symbols = np.arange(V1)
    out = np.full((B, len(positions), V1), NEG)
    for k, j in enumerate(positions):
        s = 2 * j + 1
        before = ids[j - 1] if j > 0 else -1
        after = ids[j + 1] if j + 1 < U else -1
        # A(t1), t1 = 0..T-1: entering s* at t1 (B, T) without and with the skip from s* - 2.
        a_plain = np.full((B, T), NEG)
        if j == 0:
            a_plain[:, 0] = 0.0
        a_plain[:, 1:] = alpha[:, :-1, s - 1]
        a_skip = a_plain.copy()
        if s >= 2:
            a_skip[:, 1:] = np.logaddexp(a_plain[:, 1:], alpha[:, :-1, s - 2])
        # B(t2), t2 = 0..T-1: leaving s* after t2.
        b_plain = np.full((B, T), NEG)
        b_plain[:, :-1] = beta[:, 1:, s + 1]
        if j == U - 1:  # s* may end the path: at each row's last frame
            b_plain[np.arange(B), n - 1] = 0.0
        b_skip = b_plain.copy()
        if s + 2 < 2 * U + 1:
            b_skip[:, :-1] = np.logaddexp(b_plain[:, :-1], beta[:, 1:, s + 2])
        A = np.where((symbols != before)[None, None, :], a_skip[:, :, None], a_plain[:, :, None])  # (B, T, V+1)
        Bk = np.where((symbols != after)[None, None, :], b_skip[:, :, None], b_plain[:, :, None])
        inner = np.logaddexp.accumulate(A - c[:, :-1], axis=1)  # sum over t1 <= t2
        total = Bk + c[:, 1:] + inner  # (B, T, V+1)
        total = np.where(real[:, :, None], total, NEG)
        with np.errstate(invalid="ignore"):
            out[:, k] = np.logaddexp.reduce(total, axis=1)
    out[:, :, 0] = NEG
    return np.where(np.isnan(out), NEG, out)
