"""LSTM layers over whole sequences with hand-written backward passes (CPU training).

Autograd over a per-time-step loop records ~30 small nodes per step and then
replays them one by one, computing a tiny weight-gradient matmul at every
step. Here the forward saves only what the backward needs (gate activations
and cell states); the backward runs in reverse only what is truly sequential
(dz_t -> dh_{t-1}), and every weight gradient is then one large matmul over
all T·B columns, which bf16 AMX runs at speed.

Layout: sequences are feature-major, (F, T, B). Then the input projection of
all steps is one matmul, [W_ih | b] (4H, I + 1) @ [x; 1] (I + 1, T·B), and so
are the input-side gradients, and inside a step every gate block is a
contiguous slab: PyTorch's CPU elementwise kernels run several times slower
on the strided column slices that batch-major (B, 4H) rows would give.

What the CPU time goes to (measured: bench/README.md): the loops are bound
by the number of tensor calls and by the cache, not by flops. A step's
(4H, H) matmul slows down once other data have pushed it out of the core's
L2, so blocks are short (BLOCK steps: their coefficients stay near the
cache), and large work buffers are kept from call to call (`_scratch`)
instead of being fresh, page-faulting memory each time; the tensors kept for
the backward pass reuse memory that the last step released (`_kept`).

- `lstm_layer`: one LSTM layer (Graves 2013 eqs. 7-11, gate order i, f, g, o
  as nn.LSTM).
- `window_layer`: layer 1 of the synthesis network with the soft window
  (eqs. 46-51), whose output w_t feeds layer 1's next step.

Matmuls run in `mm` (bf16 under autocast); the cell state, the window and the
pointwise maths stay in the state dtype (fp32, or fp64 in the tests). Outputs
h are in `mm`: every consumer of h is a matmul. The tests hold both layers
against autograd through the per-step `HandwritingModel.step`.
Letters: T steps (Tb in a block), B batch, H hidden, I inputs, F features
of a sequence (F, T, B), V alphabet, U characters, M window Gaussians.
"""
from __future__ import annotations

import functools
import math
import threading
from typing import NamedTuple

import torch

from . import cudagraph

# Steps handled together: step-major copies forward, coefficients backward; short,
# so that a block's coefficients stay near the cache (bench/README.md).
BLOCK = 16
# The window's exponents α̂ - β d² (eq. 46) reach the thousands below zero for
# characters far from κ. Two CPU traps: PyTorch's vectorised exp drops to a slow
# scalar path for inputs below about -88, and tiny-but-nonzero results (1e-35)
# make the fp32 weight-gradient matmuls produce denormals, slow again
# (bench/README.md). So exponents are floored at EXP_FLOOR and exp(EXP_FLOOR) is
# subtracted: far characters get exactly 0, near ones lose under 2e-22.
EXP_FLOOR = -50.0
_EXP_FLOOR_VALUE = math.exp(EXP_FLOOR)


def window_exp(q: torch.Tensor) -> torch.Tensor:
    """exp(max(q, EXP_FLOOR)) - exp(EXP_FLOOR); modifies q (a fresh temporary) in place."""
    return torch.exp(q.clamp_min_(EXP_FLOOR)) - _EXP_FLOOR_VALUE


def _no_autocast(fn):
    # Inside these functions every dtype is chosen explicitly; autocast would
    # otherwise also cast the window's bmm (φ · c) to bf16.
    @functools.wraps(fn)
    def wrapper(ctx, *args):
        dev = next(a for a in args if isinstance(a, torch.Tensor)).device.type
        with torch.autocast(dev, enabled=False):
            return fn(ctx, *args)
    return wrapper


class _CellWork:
    """Per-step work buffers and their gate views, made once per sequence.

    The loops are bound by the number of tensor calls and by memory traffic,
    not flops: writing into fixed buffers through views made here removes the
    slicing, chunking and allocation that would otherwise happen at every
    step. The pre-activations arrive in the matmul dtype and are converted
    once to the state dtype, so that every pointwise call reads and writes one
    dtype (PyTorch's mixed-dtype pointwise kernels are several times slower);
    the activations kept for the backward pass and h_t are copied out in the
    matmul dtype. The cell state c runs in the state dtype (it integrates over
    hundreds of steps); so does `h`, which the window reads.
    """

    def __init__(self, c0):
        H, B = c0.shape
        dtype, device = c0.dtype, c0.device
        self.z = torch.empty(4 * H, B, dtype=dtype, device=device)
        self.a = torch.empty(4 * H, B, dtype=dtype, device=device)  # activations i, f, g, o
        self.i, self.f, self.g, self.o = self.a.chunk(4, 0)
        self.z_if, self.z_g, self.z_o = self.z[: 2 * H], self.z[2 * H : 3 * H], self.z[3 * H :]
        self.a_if = self.a[: 2 * H]
        self.c = c0.clone()  # c_{t-1}, then c_t
        self.fc = torch.empty(H, B, dtype=dtype, device=device)
        self.tc = torch.empty(H, B, dtype=dtype, device=device)
        self.h = torch.empty(H, B, dtype=dtype, device=device)

    def step(self, z_t, acts_out, c_out, h_out):
        # z_t (4H, B): eqs. 7-10 before the nonlinearities, in the matmul dtype. Stores
        # the activations, c_t = f c_{t-1} + i g (eq. 9) and h_t = o tanh(c_t) (eq. 11).
        self.z.copy_(z_t)
        torch.sigmoid(self.z_if, out=self.a_if)
        torch.tanh(self.z_g, out=self.g)
        torch.sigmoid(self.z_o, out=self.o)
        acts_out.copy_(self.a)
        torch.mul(self.f, self.c, out=self.fc)
        torch.addcmul(self.fc, self.i, self.g, out=self.c)
        c_out.copy_(self.c)
        torch.tanh(self.c, out=self.tc)
        torch.mul(self.o, self.tc, out=self.h)
        h_out.copy_(self.h)


class _Coefficients(NamedTuple):
    """What turns the gradients into h_t and c_t into dz_t, per step of a block
    (Tb, ...), in the state dtype. With dc_t the total gradient into c_t and
    dh_t into h_t (eqs. 7-11 reversed):
        dc_t = dc_{t+1} f_{t+1} + dh_t · h_to_c
        dz_t[i, f, g] = dc_t · c_to_ifg
        dz_t[o] = dh_t · h_to_o
    """

    h_to_c: torch.Tensor  # (Tb, H, B) o (1 - tanh² c)
    c_to_ifg: torch.Tensor  # (Tb, 3H, B) [g σ'(i), c_{t-1} σ'(f), i (1 - g²)]
    h_to_o: torch.Tensor  # (Tb, H, B) tanh c σ'(o)
    f: torch.Tensor  # (Tb, H, B) the forget gate: dc_t f_t goes on to c_{t-1}


def _cell_coefficients(acts, cs, c_prev) -> _Coefficients:
    # Vectorised over a block of steps: acts (Tb, 4H, B), cs and c_prev (Tb, H, B).
    dtype = c_prev.dtype
    a, cs = acts.to(dtype), cs.to(dtype)
    i, f, g, o = a.chunk(4, 1)
    tc = torch.tanh(cs)
    otc = o * tc
    h_to_c = torch.addcmul(o, otc, tc, value=-1.0)  # o - o tanh² c
    h_to_o = torch.addcmul(otc, otc, o, value=-1.0)  # o tanh c - o² tanh c
    c_to_ifg = _scratch("coef", (cs.shape[0], 3 * cs.shape[1], cs.shape[2]), dtype, cs.device)
    to_i, to_f, to_g = c_to_ifg.chunk(3, 1)
    ig, cf = i * g, c_prev * f
    torch.addcmul(ig, ig, i, value=-1.0, out=to_i)  # g i - g i², σ'(i) = i - i²
    torch.addcmul(cf, cf, f, value=-1.0, out=to_f)
    torch.addcmul(i, ig, g, value=-1.0, out=to_g)  # i - i g²
    return _Coefficients(h_to_c, c_to_ifg, h_to_o, f)


class _CellGrad:
    """Work buffers of the reverse loop.

    `block` takes a block's coefficients and its dz rows (Tb, 4H, B) in the
    matmul dtype; `step(j)` writes dz_t there (the pointwise products are
    computed in the state dtype and rounded once, on the way out). Before
    `step`, dh must hold dh_t (H, B), the total gradient into h_t; dc holds the
    gradient from step t+1 (already times f_{t+1}) and becomes dc_t f_t.
    """

    def __init__(self, dc0):
        H, B = dc0.shape
        self.dc = dc0.clone()
        self.dh = torch.empty_like(dc0)
        self.dz = dc0.new_empty(4 * H, B)  # dz_t in the state dtype
        self.dz_ifg, self.dz_o = self.dz[: 3 * H].view(3, H, B), self.dz[3 * H :]

    def block(self, coef: _Coefficients, dz_blk):
        Tb, H3, B = coef.c_to_ifg.shape
        self.h_to_c, self.h_to_o, self.f = coef.h_to_c.unbind(0), coef.h_to_o.unbind(0), coef.f.unbind(0)
        self.c_to_ifg = coef.c_to_ifg.view(Tb, 3, H3 // 3, B).unbind(0)
        self.dz_out = dz_blk.unbind(0)

    def step(self, j):
        self.dc.addcmul_(self.dh, self.h_to_c[j])
        torch.mul(self.c_to_ifg[j], self.dc, out=self.dz_ifg)
        torch.mul(self.dh, self.h_to_o[j], out=self.dz_o)
        self.dc.mul_(self.f[j])
        self.dz_out[j].copy_(self.dz)


def _blocks(T, reverse=True):
    # Block boundaries (start, stop) with stop - start <= BLOCK, from the end by default.
    blocks = [(s, min(s + BLOCK, T)) for s in range(0, T, BLOCK)]
    return blocks[::-1] if reverse else blocks


_SCRATCH = threading.local()


def _scratch(slot, shape, dtype, device):
    """A work tensor that lives only inside one forward or backward call.

    On CPU the memory of `slot` is kept from call to call: a fresh buffer of
    tens of MB comes from mmap, and the kernel then zero-fills every page of it
    on first touch, which costs more than the matmul writing into it
    (bench/README.md). Each slot is used by one buffer
    at a time and never escapes the call that asked for it; thread-local, so
    concurrent calls do not share memory. The memory stays allocated, at the
    largest size asked for, for the life of the thread.
    """
    device = torch.device(device)
    if device.type != "cpu":
        return torch.empty(shape, dtype=dtype, device=device)
    n = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
    bufs = _SCRATCH.__dict__.setdefault("bufs", {})
    buf = bufs.get(slot)
    if buf is None or buf.numel() < n:
        with torch.inference_mode(False):  # a plain tensor even if first made while sampling
            buf = bufs[slot] = torch.empty(n, dtype=torch.uint8)
    return buf[:n].view(dtype).view(shape)


# Buffers of _kept per role: the pool keeps the latest this many (in use or not).
KEEP_PER_ROLE = 8
REUSE = True  # False: every _kept tensor is fresh (for measuring what reuse gains)


def _use_count_checked():
    # How many tensors share a storage: a private PyTorch call, so it is checked
    # once to count as _kept needs (a view adds one, releasing it takes it back);
    # otherwise nothing is reused.
    count = getattr(torch._C, "_storage_Use_Count", None)
    if count is None:
        return None
    try:
        buf = torch.empty(8, dtype=torch.uint8)
        alone = count(buf.untyped_storage()._cdata)
        view = buf[:4].view(torch.int32)
        held = count(buf.untyped_storage()._cdata)
        del view
        if held > alone == count(buf.untyped_storage()._cdata):
            return count
    except (RuntimeError, TypeError, AttributeError):
        pass
    return None


_use_count = _use_count_checked()


def _kept(role, shape, dtype, device):
    """A tensor that outlives the call (saved for the backward pass, or returned).

    On CPU, memory of a buffer that nothing references any more (the last
    step's backward has released it) is handed out again: the activations of
    a layer are tens of MB, and fresh memory of that size comes from mmap, so
    every 4 KB page of it is zero-filled by the kernel on first touch (measured
    by bench/reuse_memory.py). A buffer counts as free when only this
    pool holds its storage: any tensor still using it (autograd's saved
    tensors, a caller's reference, a view, a numpy array made from one) keeps
    it from being reused; a bare `untyped_storage()` object kept alone does
    not. Thread-local. The buffers stay allocated, at the largest size asked
    for, for the life of the thread (about the activations of one step).
    """
    device = torch.device(device)
    if device.type != "cpu" or not REUSE or _use_count is None:
        return torch.empty(shape, dtype=dtype, device=device)
    n = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
    pool = _SCRATCH.__dict__.setdefault("kept", {}).setdefault(role, [])
    found, keep = None, []
    for buf, alone in pool:  # alone: the storage's use count when only the pool holds it
        if _use_count(buf.untyped_storage()._cdata) == alone:
            if buf.numel() < n:
                continue  # free but too small: let it go
            if found is None:
                found = buf
        keep.append((buf, alone))
    pool[:] = keep[-KEEP_PER_ROLE:]
    if found is not None:
        return found[:n].view(dtype).view(shape)
    with torch.inference_mode(False):
        buf = torch.empty(n, dtype=torch.uint8)
    pool.append((buf, _use_count(buf.untyped_storage()._cdata)))
    return buf.view(dtype).view(shape)


def release_work_memory() -> None:
    """Let go of the work memory the layers keep between calls in this thread
    (`_scratch`, `_kept`) and of the CUDA graphs' buffers: for a process that
    trains and then goes on with other work. Later calls allocate afresh."""
    _SCRATCH.__dict__.clear()
    _RUNS.clear()


def _step_major(seq, s, e, slot, dtype=None):
    # (F, T, B) -> contiguous (e - s, F, B) block in scratch `slot`: each step's
    # (F, B) slice is then contiguous. One strided copy per block instead of
    # scattered rows at every step (a (F, B) slice of (F, T, B) spans F memory pages).
    out = _scratch(slot, (e - s, seq.shape[0], seq.shape[2]), dtype or seq.dtype, seq.device)
    return out.copy_(seq[:, s:e].permute(1, 0, 2))


def _c_prev(cs, c0, s, e):
    # (e - s, H, B) in c0's dtype: c_{t-1} for t in [s, e).
    if s == 0:
        return torch.cat((c0.unsqueeze(0), cs[: e - 1].to(c0.dtype)), 0)
    return cs[s - 1 : e - 1].to(c0.dtype)


def _acts_dtype(mm, dtype):
    # bf16/fp16 matmuls: keep the activations in that dtype (half the memory);
    # they were computed from bf16 pre-activations, so nothing is lost.
    return mm if torch.finfo(mm).bits < torch.finfo(dtype).bits else dtype


def _stacked_input(parts):
    # [parts] (I_k, T, B) -> X = [x; 1] (I + 1, T·B) in scratch: the layer's whole
    # input with a row of ones for the bias. Then the input projection and the
    # input-side gradients are one matmul each, and each reads the (4H, T·B)
    # pre-activations or their gradient once instead of once per part.
    _, T, B = parts[0].shape
    n = [x.shape[0] for x in parts]
    X = _scratch("input", (sum(n) + 1, T * B), parts[0].dtype, parts[0].device)
    for x, rows in zip(parts, X.split(n + [1])):
        rows.copy_(x.reshape(x.shape[0], T * B))
    X[-1] = 1
    return X


def _input_projection(w_ih, bias, parts, mm):
    # [W_ih | b] (4H, I + 1) @ [x; 1] for all steps: (4H, T, B) in mm, in scratch.
    _, T, B = parts[0].shape
    xp = _scratch("big", (w_ih.shape[0], T * B), mm, w_ih.device)
    torch.mm(torch.cat((w_ih, bias.detach().to(mm).unsqueeze(1)), 1), _stacked_input(parts), out=xp)
    return xp.view(-1, T, B)


def _weight_grads(dz_all, parts, h0, hs, w_ih):
    # dz_all (4H, T, B), parts [(I_k, T, B)], hs (H, T, B), all in the matmul dtype.
    # Every weight gradient is one matmul over the T·B columns:
    #   [dW_ih | db] = Σ_t dz_t [x_t; 1]ᵀ, dW_hh = Σ_t dz_t h_{t-1}ᵀ, dx_t = W_ihᵀ dz_t.
    _, T, B = dz_all.shape
    dz2 = dz_all.view(-1, T * B)  # (4H, T·B)
    d_w = dz2 @ _stacked_input(parts).t()  # (4H, I + 1)
    # W_ihᵀ as a contiguous left operand: a transposed one runs at half speed.
    d_x = torch.mm(w_ih.t().contiguous(), dz2, out=_kept("d_x", (w_ih.shape[1], T * B), dz2.dtype, dz2.device))
    # (I, T·B); each part's rows are contiguous
    d_parts = [d.view(-1, T, B) for d in d_x.split([x.shape[0] for x in parts])]
    return d_w[:, :-1], d_w[:, -1], _recurrent_grad(dz_all, h0, hs), d_parts


def _recurrent_grad(dz_all, first, seq):
    # Σ_t dz_t s_{t-1}ᵀ for a recurrent input s (h or the window w): dz_all (4H, T, B),
    # first = s_0 (F, B) before step 1, seq (F, T, B) = s_1..s_T; no shifted copy is made.
    _, T, B = dz_all.shape
    grad = dz_all[:, 0] @ first.t()  # (4H, B) @ (B, F)
    if T > 1:
        grad = grad + dz_all.view(-1, T * B)[:, B:] @ seq.reshape(seq.shape[0], T * B)[:, : (T - 1) * B].t()
    return grad


class _LSTMLayer(torch.autograd.Function):
    @staticmethod
    @_no_autocast
    def forward(ctx, w_ih, bias, w_hh, h0, c0, mm, *parts):
        # parts [(I_k, T, B)], the layer's input in pieces; w_ih (4H, Σ I_k);
        # bias (4H,) = b_ih + b_hh; w_hh (4H, H); h0, c0 (B, H).
        _, T, B = parts[0].shape
        H = w_hh.shape[1]
        dtype = c0.dtype
        parts = [x.detach().to(mm) for x in parts]
        w_ih, w_hh = w_ih.detach().to(mm), w_hh.detach().to(mm)
        xp = _input_projection(w_ih, bias, parts, mm)  # (4H, T, B)
        hs = _kept("hs", (H, T, B), mm, xp.device)
        cs = _kept("cs", (T, H, B), _acts_dtype(mm, dtype), xp.device)
        acts = _kept("acts", (T, 4 * H, B), _acts_dtype(mm, dtype), xp.device)
        h = h0_f = h0.detach().t().to(mm)  # (H, B)
        c0_f = c0.detach().t().contiguous()
        work = _CellWork(c0_f)
        acts_t, cs_t = acts.unbind(0), cs.unbind(0)
        for s, e in _blocks(T, reverse=False):
            xb, hb = _step_major(xp, s, e, "blk"), _scratch("h", (e - s, H, B), mm, xp.device)
            for x_t, h_next, a_t, c_t in zip(xb.unbind(0), hb.unbind(0), acts_t[s:e], cs_t[s:e]):
                work.step(x_t.addmm_(w_hh, h), a_t, c_t, h_next)  # z_t = W_ih x_t + b + W_hh h_{t-1}
                h = h_next
            hs[:, s:e] = hb.permute(1, 0, 2)
        ctx.save_for_backward(w_ih, w_hh, acts, cs, hs, h0_f, c0_f, *parts)
        return hs, work.c.t().clone()

    @staticmethod
    @_no_autocast
    def backward(ctx, g_hs, g_cT):
        w_ih, w_hh, acts, cs, hs, h0, c0, *parts = ctx.saved_tensors
        H, T, B = hs.shape
        mm, dtype = hs.dtype, c0.dtype
        dz_all = _scratch("big", (4 * H, T, B), mm, hs.device)
        dz_next = hs.new_zeros(4 * H, B)  # dz_{t+1}: zero after the last step
        dh_mm = hs.new_empty(H, B)
        cg = _CellGrad(torch.zeros_like(c0) if g_cT is None else g_cT.t().to(dtype))
        w_hh_t = w_hh.t().contiguous()  # a transposed operand costs a weight copy per matmul
        for s, e in _blocks(T):
            dz_blk = _scratch("blk", (e - s, 4 * H, B), mm, hs.device)
            cg.block(_cell_coefficients(acts[s:e], cs[s:e], _c_prev(cs, c0, s, e)), dz_blk)
            g_blk, dz_steps = _step_major(g_hs, s, e, "h", mm).unbind(0), dz_blk.unbind(0)
            for j in range(e - s - 1, -1, -1):
                # dh_t = g_t + W_hhᵀ dz_{t+1}: one matmul with the add folded in.
                cg.dh.copy_(torch.addmm(g_blk[j], w_hh_t, dz_next, out=dh_mm))
                cg.step(j)
                dz_next = dz_steps[j]
            dz_all[:, s:e] = dz_blk.permute(1, 0, 2)
            dz_next = dz_all[:, s]  # the block buffer is reused by the next block
        d_w_ih, d_b, d_w_hh, d_parts = _weight_grads(dz_all, parts, h0, hs, w_ih)
        dh0 = torch.mm(w_hh_t, dz_next).to(dtype)  # W_hhᵀ dz_1 -> dh_0
        return (d_w_ih, d_b, d_w_hh, dh0.t(), cg.dc.t(), None, *d_parts)


class WindowWeights(NamedTuple):
    """The parameters of synthesis layer 1 and its window, as `window_layer` takes them."""

    w_ih: torch.Tensor  # (4H, 3 + V) for [x_t, w_{t-1}]
    bias: torch.Tensor  # (4H,) b_ih + b_hh
    w_hh: torch.Tensor  # (4H, H)
    win_w: torch.Tensor  # (3M, H) eq. 48
    win_b: torch.Tensor  # (3M,)


class WindowState(NamedTuple):
    """Layer 1 and the window before the first step (the state carried over from the last call)."""

    h: torch.Tensor  # (B, H)
    c: torch.Tensor  # (B, H)
    kappa: torch.Tensor  # (B, M) window positions κ
    w: torch.Tensor  # (B, V) window vector


class _Steps(NamedTuple):
    """What the forward loop writes at every step, step-major: over the whole
    sequence (T, ...), or over one block of the graph path's buffers."""

    acts: torch.Tensor  # (T, 4H, B) layer 1's gate activations i, f, g, o
    c: torch.Tensor  # (T, H, B) its cell states
    params: torch.Tensor  # (T, B, 3M) (α̂, β̂, κ̂), eq. 48
    kappa: torch.Tensor  # (T, B, M) window positions, eq. 51
    phi: torch.Tensor  # (T, B, U) window weights, eq. 46
    w: torch.Tensor  # (T, B, V) window vectors, eq. 47


class _BackSteps(NamedTuple):
    """The reverse loop's inputs and outputs at every step of a block, step-major (Tb, ...)."""

    g_w: torch.Tensor  # (Tb, B, V) gradient into w_t from the layers above
    g_h: torch.Tensor  # (Tb, H, B) gradient into h_t from the layers above
    phi_to_params: torch.Tensor  # (Tb, B, 3M, U) dφ_t -> (dα̂, dβ̂, dκ_t), `_window_coefficients`
    kappa_step: torch.Tensor  # (Tb, B, M) exp(κ̂): dκ_t -> dκ̂ (eq. 51)
    d_params: torch.Tensor  # (Tb, B, 3M) out: (dα̂, dβ̂, dκ̂)
    dz: torch.Tensor  # (Tb, 4H, B) out, in the matmul dtype: dz_t


class _Saved(NamedTuple):
    """What the window layer's forward keeps for its backward (ctx.saved_tensors, in this order)."""

    x: torch.Tensor  # (3, T, B) points, in the matmul dtype
    w_ih: torch.Tensor  # (4H, 3 + V) in the matmul dtype
    w_rec: torch.Tensor  # (4H, V + H) [W_w | W_hh], in the matmul dtype
    win_w: torch.Tensor  # (3M, H)
    text: torch.Tensor  # (B, U, V) one-hot
    acts: torch.Tensor  # (T, 4H, B) gate activations
    cs: torch.Tensor  # (T, H, B) cell states
    hs: torch.Tensor  # (H, T, B) h_t, in the matmul dtype
    ws: torch.Tensor  # (T, B, V) window vectors
    kappas: torch.Tensor  # (T, B, M)
    params: torch.Tensor  # (T, B, 3M) (α̂, β̂, κ̂)
    h0: torch.Tensor  # (H, B) in the matmul dtype
    c0: torch.Tensor  # (H, B)
    kappa0: torch.Tensor  # (B, M)
    w0: torch.Tensor  # (B, V)


def _window_coefficients(params, kappas, u) -> tuple[torch.Tensor, torch.Tensor]:
    # Vectorised over a block: params (Tb, B, 3M) = (α̂, β̂, κ̂), kappas (Tb, B, M), u (U,).
    # Returns phi_to_params (Tb, B, 3M, U), whose rows turn dφ_t (B, U) into (dα̂, dβ̂, dκ_t
    # local) by one bmm, and the κ step (Tb, B, M). With e = exp(α̂ - β d²), d = κ - u
    # (eq. 46): ∂/∂α̂ = e, ∂/∂β̂ = -β d² e, ∂/∂κ = -2β d e.
    M = kappas.shape[2]
    bs = torch.exp(params[..., M:])  # β, κ step (eqs. 50-51)
    beta = bs[..., :M].unsqueeze(3)
    d = kappas.unsqueeze(3) - u
    e = window_exp(torch.addcmul(params[..., :M].unsqueeze(3), beta, d * d, value=-1.0))
    be_d = beta * e * d
    return torch.cat((e, -be_d * d, -2.0 * be_d), 2), bs[..., M:]


def _forward_items(x_proj, h, steps: _Steps):
    # Per step t of a block: (x_t (4H, B), h_t (H, B), then each of `steps` at t), for _window_steps.
    return zip(x_proj.unbind(0), h.unbind(0), *(t.unbind(0) for t in steps))


def _backward_items(steps: _BackSteps):
    # Per step j of a block, latest first: (j, then each of `steps` at j), for _window_back_steps.
    return list(zip(range(len(steps.dz)), *(t.unbind(0) for t in steps)))[::-1]


class _WindowRun:
    """The window layer's loop state, weights and text at fixed addresses.

    Both loops run on these buffers: `_window_steps` forward,
    `_window_back_steps` in reverse. With `block` (CUDA graphs), it also holds
    one block of each per-step input and output, and the two graphs that
    replay a whole block (cudagraph.py); values are copied in and out once per
    block (`run_forward`, `run_backward`). U may exceed the text's length
    (padding to fewer graph shapes): the extra characters are all-zero rows of
    `text`, so they change no w_t and get no gradient. No tensor attribute is
    ever rebound: a graph reads the addresses it was recorded with.
    """

    def __init__(self, B, H, V, U, M, mm, dtype, device, block=0):
        z = functools.partial(torch.zeros, device=device)
        self.M = M
        # Weights and text (`load`).
        self.w_rec = z(4 * H, V + H, dtype=mm)  # [W_w | W_hh]: one matmul for [w_{t-1}; h_{t-1}]
        self.w_rec_t = z(V + H, 4 * H, dtype=mm)  # its transpose, contiguous (backward)
        self.win_w, self.win_b = z(3 * M, H, dtype=dtype), z(3 * M, 1, dtype=dtype)  # eq. 48
        self.win_w_t = self.win_w.t()  # (H, 3M)
        self.text = z(B, U, V, dtype=dtype)  # one-hot
        self.positions = torch.arange(1, U + 1, device=device, dtype=dtype)  # (U,) u = 1 .. U
        # Forward: layer 1's cell (holds c_{t-1}), its recurrent input and κ_{t-1}.
        self.cell = _CellWork(z(H, B, dtype=dtype))
        self.prev = z(V + H, B, dtype=mm)  # [w_{t-1}; h_{t-1}] in the matmul dtype
        self.prev_w, self.prev_h = self.prev[:V], self.prev[V:]  # (V, B), (H, B)
        self.kappa = z(B, M, dtype=dtype)  # (B, M) κ_{t-1}
        # Reverse: [W_w | W_hh]ᵀ dz_t = (dw_{t-1}, dh_{t-1}), and dκ carried to earlier steps.
        self.d_prev = z(V + H, B, dtype=mm)
        self.d_prev_w, self.d_prev_h = self.d_prev[:V].t(), self.d_prev[V:]  # (B, V), (H, B)
        self.d_kappa = z(B, M, dtype=dtype)  # (B, M)
        self.cell_grad = _CellGrad(z(H, B, dtype=dtype))
        self.block = block
        if not block:
            return
        n = block
        acts = _acts_dtype(mm, dtype)
        # One block of every per-step input and output, and the graphs that run a whole block.
        self.x_proj, self.h = z(n, 4 * H, B, dtype=mm), z(n, H, B, dtype=mm)  # W_x x_t + b in, h_t out
        self.steps = _Steps(z(n, 4 * H, B, dtype=acts), z(n, H, B, dtype=acts), z(n, B, 3 * M, dtype=dtype),
                            z(n, B, M, dtype=dtype), z(n, B, U, dtype=dtype), z(n, B, V, dtype=dtype))
        self.coef = _Coefficients(z(n, H, B, dtype=dtype), z(n, 3 * H, B, dtype=dtype), z(n, H, B, dtype=dtype),
                                  z(n, H, B, dtype=dtype))
        self.back = _BackSteps(z(n, B, V, dtype=dtype), z(n, H, B, dtype=dtype), z(n, B, 3 * M, U, dtype=dtype),
                               z(n, B, M, dtype=dtype), z(n, B, 3 * M, dtype=dtype), z(n, 4 * H, B, dtype=mm))
        self.cell_grad.block(self.coef, self.back.dz)
        self.fwd_items = list(_forward_items(self.x_proj, self.h, self.steps))
        self.back_items = _backward_items(self.back)  # latest first
        self.fwd_graph = cudagraph.capture(lambda: _window_steps(self, self.fwd_items), device)
        self.back_graph = cudagraph.capture(lambda: _window_back_steps(self, self.back_items), device)

    def load(self, w_rec, win_w, text, backward=False):
        # w_rec (4H, V + H) mm, win_w (3M, H), text (B, U', V) with U' <= U; the
        # forward loop reads w_rec, the reverse loop its transpose.
        (self.w_rec_t if backward else self.w_rec).copy_(w_rec.t() if backward else w_rec)
        self.win_w.copy_(win_w)
        self.text[:, text.shape[1]:].zero_()
        self.text[:, : text.shape[1]].copy_(text)

    def run_forward(self, x_proj, hs, steps: _Steps, s, e):
        """Steps s .. e-1 on the block buffers: x_proj (4H, T, B) in, hs (H, T, B) and steps (T, ...) out."""
        k = e - s
        self.x_proj[:k].copy_(x_proj[:, s:e].permute(1, 0, 2))
        self.forward_block(k)
        hs[:, s:e] = self.h[:k].permute(1, 0, 2)
        for full, blk in zip(steps, self.steps):
            full[s:e] = blk[:k, :, : full.shape[2]]  # φ without the padded text's extra positions

    def run_backward(self, coef: _Coefficients, steps: _BackSteps):
        """One block of the reverse loop on the block buffers: coef and the inputs of steps in,
        its outputs (d_params, dz) out."""
        k = len(steps.dz)
        for buf, v in zip((*self.coef, *self.back[:4]), (*coef, *steps[:4])):
            buf[:k] = v
        self.backward_block(k)
        steps.d_params.copy_(self.back.d_params[:k])
        steps.dz.copy_(self.back.dz[:k])

    def forward_block(self, k):
        # Steps 0..k-1 of the block buffers (k <= block); the graph when whole.
        if k == self.block:
            self.fwd_graph()
        else:
            _window_steps(self, self.fwd_items[:k])

    def backward_block(self, k):
        if k == self.block:
            self.back_graph()
        else:
            _window_back_steps(self, self.back_items[-k:])


_RUNS = cudagraph.Cache()


def _window_run(B, H, V, U, M, mm, dtype, device):
    # A fresh run for the step-by-step loops; on a GPU with graphs, a kept one
    # per shape, with U rounded up to a multiple of 16 (fewer shapes to record).
    if not cudagraph.wanted(device):
        return _WindowRun(B, H, V, U, M, mm, dtype, device)
    U = -(-U // 16) * 16
    key = (B, H, V, U, M, mm, dtype, str(device), BLOCK)
    return _RUNS.get(key, lambda: _WindowRun(B, H, V, U, M, mm, dtype, device, block=BLOCK))


def _window_steps(r, steps):
    # Layer 1 and the window forward, one step per item of `steps` (`_forward_items`):
    # (x_t, h_t, acts_t, c_t, p_t, κ_t, φ_t, w_t), x_t the input projection (4H, B)
    # in the matmul dtype, the others outputs.
    M = r.M
    kappa = r.kappa
    for x_t, h, a_t, c_t, p, kappa_t, phi_t, w_t in steps:
        r.cell.step(x_t.addmm_(r.w_rec, r.prev), a_t, c_t, h)
        # eq. 48: (α̂, β̂, κ̂) (B, 3M), from h_t in the state dtype: this matmul is
        # tiny, and bf16 takes a slow path for it.
        torch.addmm(r.win_b, r.win_w, r.cell.h, out=p.t())
        bs = torch.exp(p[:, M:])  # eqs. 50-51: β and the κ step
        kappa = torch.add(kappa, bs[:, M:], out=kappa_t)  # eq. 51: only forward
        d = kappa.unsqueeze(2) - r.positions  # (B, M, U)
        # eq. 46 with α = exp(α̂) (eq. 49) folded in: Σ_m exp(α̂ - β d²).
        q = torch.addcmul(p[:, :M].unsqueeze(2), bs[:, :M].unsqueeze(2), d * d, value=-1.0)
        torch.sum(window_exp(q), 1, out=phi_t)  # (B, U)
        torch.bmm(phi_t.unsqueeze(1), r.text, out=w_t.unsqueeze(1))  # eq. 47
        r.prev_w.copy_(w_t.t())
        r.prev_h.copy_(h)
    r.kappa.copy_(kappa)


def _window_back_steps(r, steps):
    # The reverse loop, one step per item of `steps` (`_backward_items`), latest first:
    # (j, g_w_t (B, V), g_h_t (H, B), phi_to_params_t, κ step_t, dp_t (B, 3M) out,
    # dz_t (4H, B) out); j indexes the coefficients given to r.cell_grad.block.
    M = r.M
    for j, g_w, g_h, phi_to_params, kappa_step, dp, dz in steps:
        # Window (eqs. 46-51) in reverse: dw_t -> dφ_t (eq. 47) -> dp_t = (dα̂, dβ̂, dκ̂).
        dphi = torch.bmm(r.text, (g_w + r.d_prev_w).unsqueeze(2))  # (B, U, 1)
        torch.bmm(phi_to_params, dphi, out=dp.unsqueeze(2))
        r.d_kappa.add_(dp[:, 2 * M :])  # κ_t also moves every later κ (eq. 51)
        torch.mul(r.d_kappa, kappa_step, out=dp[:, 2 * M :])
        # Layer 1's cell, then [W_w | W_hh]ᵀ dz_t -> (dw_{t-1}, dh_{t-1}).
        torch.add(g_h, r.d_prev_h, out=r.cell_grad.dh).addmm_(r.win_w_t, dp.t())  # (H, B)
        r.cell_grad.step(j)
        torch.mm(r.w_rec_t, dz, out=r.d_prev)  # (V + H, B)


class _WindowLayer(torch.autograd.Function):
    """Layer 1 and the window over a whole sequence, with a hand-written backward.

    apply(mm, text, x, *WindowWeights, *WindowState): mm the matmul dtype,
    text (B, U, V) one-hot, x (3, T, B) points; the weights and the state at
    step 0 get gradients."""

    @staticmethod
    @_no_autocast
    def forward(ctx, mm, text, x, *tensors):
        weights, start = WindowWeights(*tensors[:5]), WindowState(*tensors[5:])
        _, T, B = x.shape
        H, (U, V), M = weights.w_hh.shape[1], text.shape[1:], start.kappa.shape[1]
        dtype = start.c.dtype
        x = x.detach().to(mm)
        w_ih, w_hh = weights.w_ih.detach().to(mm), weights.w_hh.detach().to(mm)
        x_proj = _input_projection(w_ih[:, :3], weights.bias, [x], mm)  # (4H, T, B): W_x x_t + b
        w_rec = torch.cat((w_ih[:, 3:], w_hh), 1)  # (4H, V + H)
        win_w = weights.win_w.detach().to(dtype)  # (3M, H)
        text = text.detach().to(dtype)
        r = _window_run(B, H, V, U, M, mm, dtype, x.device)
        r.load(w_rec, win_w, text)
        r.win_b.copy_(weights.win_b.detach().unsqueeze(1))
        c0 = start.c.detach().t().contiguous()  # (H, B)
        r.cell.c.copy_(c0)
        r.prev_w.copy_(start.w.detach().t())
        r.prev_h.copy_(start.h.detach().t())
        r.kappa.copy_(start.kappa.detach())
        hs = _kept("hs", (H, T, B), mm, x.device)
        cs = _kept("cs", (T, H, B), _acts_dtype(mm, dtype), x.device)
        acts = _kept("acts", (T, 4 * H, B), _acts_dtype(mm, dtype), x.device)
        ws = _kept("ws", (T, B, V), dtype, x.device)
        steps = _Steps(acts, cs, params=x.new_empty(T, B, 3 * M, dtype=dtype),
                       kappa=x.new_empty(T, B, M, dtype=dtype), phi=x.new_empty(T, B, U, dtype=dtype), w=ws)
        for s, e in _blocks(T, reverse=False):
            if r.block:
                r.run_forward(x_proj, hs, steps, s, e)
                continue
            x_blk, h_blk = _step_major(x_proj, s, e, "blk"), _scratch("h", (e - s, H, B), mm, x.device)
            _window_steps(r, _forward_items(x_blk, h_blk, _Steps(*(t[s:e] for t in steps))))
            hs[:, s:e] = h_blk.permute(1, 0, 2)
        ctx.save_for_backward(*_Saved(x, w_ih, w_rec, win_w, text, acts, cs, hs, ws, steps.kappa, steps.params,
                                      start.h.detach().t().to(mm), c0, start.kappa.detach(),
                                      start.w.detach().to(dtype)))
        ctx.mark_non_differentiable(steps.phi, steps.kappa)
        return hs, ws.permute(2, 0, 1).to(mm), steps.phi, steps.kappa, r.cell.c.t().clone()

    @staticmethod
    @_no_autocast
    def backward(ctx, g_hs, g_ws, _g_phis, _g_kappas, g_cT):
        saved = _Saved(*ctx.saved_tensors)
        H, T, B = saved.hs.shape
        (U, V), M = saved.text.shape[1:], saved.kappa0.shape[1]
        mm, dtype = saved.hs.dtype, saved.c0.dtype
        r = _window_run(B, H, V, U, M, mm, dtype, saved.x.device)
        r.load(saved.w_rec, saved.win_w, saved.text, backward=True)
        r.d_prev.zero_()
        r.d_kappa.zero_()
        if g_cT is None:
            r.cell_grad.dc.zero_()
        else:
            r.cell_grad.dc.copy_(g_cT.t())
        g_ws = g_ws.permute(1, 2, 0).to(dtype)  # (T, B, V)
        dz_all = _scratch("big", (4 * H, T, B), mm, saved.hs.device)
        d_params = saved.c0.new_empty(T, B, 3 * M)
        for s, e in _blocks(T):
            coef = _cell_coefficients(saved.acts[s:e], saved.cs[s:e], _c_prev(saved.cs, saved.c0, s, e))
            phi_to_params, kappa_step = _window_coefficients(saved.params[s:e], saved.kappas[s:e], r.positions)
            g_h = _step_major(g_hs, s, e, "h", dtype)
            if r.block:
                dz_blk = dz_all[:, s:e].permute(1, 0, 2)
                r.run_backward(coef, _BackSteps(g_ws[s:e], g_h, phi_to_params, kappa_step, d_params[s:e], dz_blk))
                continue
            dz_blk = _scratch("blk", (e - s, 4 * H, B), mm, saved.hs.device)
            r.cell_grad.block(coef, dz_blk)
            _window_back_steps(r, _backward_items(
                _BackSteps(g_ws[s:e], g_h, phi_to_params, kappa_step, d_params[s:e], dz_blk)))
            dz_all[:, s:e] = dz_blk.permute(1, 0, 2)
        # Weight gradients, one matmul each over all T·B columns.
        d_w_x, d_b, d_w_hh, (d_x,) = _weight_grads(dz_all, [saved.x], saved.h0, saved.hs, saved.w_ih[:, :3])
        ws = saved.ws.permute(2, 0, 1).to(mm).contiguous()  # (V, T, B): w_t
        d_w_w = _recurrent_grad(dz_all, saved.w0.t().to(mm), ws)
        dp2 = d_params.view(T * B, 3 * M)
        d_win_w = dp2.t().to(mm) @ saved.hs.reshape(H, T * B).t()
        d_weights = WindowWeights(torch.cat((d_w_x, d_w_w), 1), d_b, d_w_hh, d_win_w, dp2.sum(0))
        # Copies: r's buffers are reused by the next call.
        d_start = WindowState(r.d_prev_h.t().to(dtype, copy=True), r.cell_grad.dc.t().clone(), r.d_kappa.clone(),
                              r.d_prev_w.to(dtype, copy=True))
        return (None, None, d_x, *d_weights, *d_start)


def lstm_layer(parts, w_ih, bias, w_hh, h0, c0, mm):
    """One LSTM layer over T steps -> hs (H, T, B) in mm, c_T (B, H).

    parts: the input as a list of (I_k, T, B) pieces (say x, h of the layer
    below, w), in w_ih's column order; they are never concatenated.
    """
    return _LSTMLayer.apply(w_ih, bias, w_hh, h0, c0, mm, *parts)


def window_layer(x: torch.Tensor, weights: WindowWeights, text: torch.Tensor, start: WindowState,
                 mm: torch.dtype):
    """Synthesis layer 1 + window over T steps; x (3, T, B), text (B, U, V) one-hot.

    Returns hs (H, T, B) and ws (V, T, B) in mm, phis (T, B, U), kappas
    (T, B, M) and c_T (B, H); φ and κ are for pictures and stopping, not
    differentiable.
    """
    return _WindowLayer.apply(mm, text, x, *weights, *start)
