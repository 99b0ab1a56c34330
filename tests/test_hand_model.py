"""Handwriting model maths, the torch-rnn way: fast == naive, gradcheck, small shapes."""
import json

import pytest
import torch

from genseq.errors import GenseqError
from genseq.hand import (
    HandState, HandwritingConfig, HandwritingModel, encode_text, mdn_nll, mdn_params, pad_texts,
)
from genseq.hand.fast import recurrent
from genseq.hand.mdn import MDNParams

ALPHABET = "abc de"


def tiny(kind, dtype=torch.float64, seed=0, **kw):
    torch.manual_seed(seed)
    args = dict(kind=kind, hidden=5, layers=3, mixtures=2, window=2)
    if kind == "synthesis":
        args["alphabet"] = ALPHABET
    args.update(kw)
    return HandwritingModel(HandwritingConfig(**args)).to(dtype)


def batch(B=2, T=6, dtype=torch.float64, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, 3, generator=g, dtype=dtype)
    x[..., 2] = (torch.rand(B, T, generator=g) < 0.3).to(dtype)
    ids, tmask = pad_texts(["ab d", "ca"][:B], ALPHABET)
    mask = torch.ones(B, T, dtype=dtype)
    mask[1, T - 2 :] = 0  # second sequence is padded
    return x, ids, tmask, mask


def naive(model, x, ids, state=None):
    B, T, _ = x.shape
    state = state or model.initial_state(B)
    text = model.one_hot(ids) if model.synthesis else None
    outs, phis = [], []
    for t in range(T):
        p, state, phi = model.step(x[:, t], state, text)
        outs.append(p)
        phis.append(phi)
    params = MDNParams(*(torch.stack(z, 1) for z in zip(*outs)))
    return params, state, (torch.stack(phis, 1) if model.synthesis else None)


def loss_of(params, x, mask):
    return mdn_nll(params, x, mask).sum()


@pytest.mark.parametrize("kind", ["prediction", "synthesis"])
@pytest.mark.parametrize("block", [64, 4])  # 4: the backward crosses block boundaries
def test_fast_forward_matches_naive_step_loop(kind, block, monkeypatch):
    monkeypatch.setattr(recurrent, "BLOCK", block)
    model = tiny(kind)
    x, ids, tmask, mask = batch(T=10)
    # Non-zero start state, as when training carries state between chunks.
    s0 = model.initial_state(2)
    g = torch.Generator().manual_seed(3)
    s0 = HandState(
        torch.randn(s0.h.shape, generator=g, dtype=s0.h.dtype) * 0.5,
        torch.randn(s0.c.shape, generator=g, dtype=s0.c.dtype) * 0.5,
        None if s0.kappa is None else torch.rand(s0.kappa.shape, generator=g, dtype=s0.kappa.dtype),
        None if s0.window is None else torch.rand(s0.window.shape, generator=g, dtype=s0.window.dtype),
    )
    fast, fs, extras = model(x, ids, tmask, state=s0)
    gf = torch.autograd.grad(loss_of(fast, x, mask), list(model.parameters()))
    ref, rs, phi = naive(model, x, ids, state=s0)
    gr = torch.autograd.grad(loss_of(ref, x, mask), list(model.parameters()))
    for a, b in zip(fast, ref):
        torch.testing.assert_close(a, b)
    for a, b in zip(fs, rs):
        if a is not None:
            torch.testing.assert_close(a, b)
    for (name, _), a, b in zip(model.named_parameters(), gf, gr):
        torch.testing.assert_close(a, b, msg=name)
    if kind == "synthesis":
        torch.testing.assert_close(extras["phi"], phi * tmask.unsqueeze(1))
        assert extras["kappa"].shape == (2, 10, 2)


def test_mdn_loss_gradcheck():
    g = torch.Generator().manual_seed(0)
    B, T, K = 2, 3, 3
    y = torch.randn(B, T, 1 + 6 * K, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randn(B, T, 3, generator=g, dtype=torch.float64)
    target[..., 2] = torch.tensor([[1.0, 0, 0], [0, 1, 0]])
    mask = torch.tensor([[1.0, 1, 1], [1, 1, 0]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda y: mdn_nll(mdn_params(y, K), target, mask), (y,))


def test_mdn_loss_matches_direct_density():
    g = torch.Generator().manual_seed(0)
    K = 2
    y = torch.randn(1, 1, 1 + 6 * K, generator=g, dtype=torch.float64)
    t = torch.tensor([[[0.3, -0.2, 1.0]]], dtype=torch.float64)
    p = mdn_params(y, K)
    dens = 0.0
    for k in range(K):
        mu = torch.stack((p.mu1[0, 0, k], p.mu2[0, 0, k]))
        s1, s2, r = p.log_sigma1[0, 0, k].exp(), p.log_sigma2[0, 0, k].exp(), p.rho[0, 0, k]
        cov = torch.stack((torch.stack((s1 * s1, r * s1 * s2)), torch.stack((r * s1 * s2, s2 * s2))))
        mvn = torch.distributions.MultivariateNormal(mu, cov)
        dens = dens + p.log_pi[0, 0, k].exp() * mvn.log_prob(t[0, 0, :2]).exp()
    expected = -torch.log(dens) - torch.log(torch.sigmoid(p.eos_logit[0, 0]))
    torch.testing.assert_close(mdn_nll(p, t)[0, 0], expected)


def test_synthesis_network_gradcheck():
    model = tiny("synthesis", hidden=3, layers=2, mixtures=2, window=2)
    x, ids, tmask, mask = batch(T=3)
    # Through the inputs (every layer, the window and the MDN are on the path) ...
    xr = x.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda xi: loss_of(model(xi, ids, tmask)[0], x, mask), (xr,), eps=1e-6, atol=1e-5
    )
    # ... and through layer 1 and the window weights (the per-step loop).
    names = [n for n, _ in model.named_parameters() if n.startswith(("window_layer", "lstms.0"))]
    vals = tuple(dict(model.named_parameters())[n].detach().clone().requires_grad_(True) for n in names)

    def g(*vs):
        out = torch.func.functional_call(model, dict(zip(names, vs)), (x, ids, tmask), strict=False)
        return loss_of(out[0], x, mask)

    assert torch.autograd.gradcheck(g, vals, eps=1e-6, atol=1e-5)


def test_kappa_never_decreases_and_phi_masks_padding():
    model = tiny("synthesis", dtype=torch.float32)
    x, ids, tmask, _ = batch(T=20, dtype=torch.float32)
    with torch.no_grad():
        _, state, extras = model(x, ids, tmask)
    k = extras["kappa"]  # (B, T, M)
    assert (k[:, 1:] >= k[:, :-1]).all() and (k[:, 0] > 0).all()
    assert (extras["phi"][1, :, 2:] == 0).all()  # "ca" is padded to 4
    torch.testing.assert_close(state.kappa, k[:, -1])


def test_loss_finite_and_decreases_when_overfitting():
    torch.manual_seed(0)
    model = HandwritingModel(HandwritingConfig(kind="synthesis", alphabet=ALPHABET,
                                               hidden=16, layers=2, mixtures=3, window=2))
    x, ids, tmask, mask = batch(B=2, T=12, dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        params, _, _ = model(x[:, :-1], ids, tmask)
        loss = mdn_nll(params, x[:, 1:], mask[:, 1:]).sum() / mask[:, 1:].sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0] - 1.0


@pytest.mark.parametrize("kind", ["prediction", "synthesis"])
def test_bf16_autocast_runs_and_loss_is_fp32(kind):
    model = tiny(kind, dtype=torch.float32, hidden=8)
    x, ids, tmask, mask = batch(dtype=torch.float32)
    ref = mdn_nll(model(x, ids, tmask)[0], x, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        params, state, extras = model(x, ids, tmask)
        nll = mdn_nll(params, x, mask)
    assert nll.dtype == torch.float32 and torch.isfinite(nll).all()
    nll.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    torch.testing.assert_close(nll, ref, atol=0.3, rtol=0.1)
    if kind == "synthesis":
        assert state.kappa.dtype == torch.float32


def test_config_round_trips_through_json():
    config = HandwritingConfig(kind="synthesis", alphabet="ab", norm_mean=(1.0, 2.0), norm_std=(3.0, 4.0))
    d = json.loads(json.dumps(config.to_dict()))
    assert HandwritingConfig.from_dict(d) == config
    with pytest.raises(GenseqError):
        HandwritingConfig.from_dict({**d, "bogus": 1})
    with pytest.raises(GenseqError):
        HandwritingConfig(kind="synthesis", alphabet="")


def test_encode_text():
    assert encode_text("cab", "abc").tolist() == [3, 1, 2]
    with pytest.raises(GenseqError, match="z"):
        encode_text("az", "abc")
    model = tiny("synthesis")
    ids, mask = pad_texts(["ab", "a"], ALPHABET)
    oh = model.one_hot(ids)
    assert oh.shape == (2, 2, len(ALPHABET)) and oh[1, 1].sum() == 0 and mask[1, 1] == 0


def test_state_names_are_stable():
    names = set(tiny("synthesis").state_dict())
    assert {"lstms.0.weight_ih_l0", "lstms.2.weight_hh_l0", "window_layer.weight",
            "output.linear.weight"} <= names


def test_lstm_pointwise_matches_torch_lstm_cell():
    from genseq.hand.model import _lstm_pointwise

    g = torch.Generator().manual_seed(0)
    B, D, H = 3, 4, 5
    x, h, c = (torch.randn(B, n, generator=g, dtype=torch.float64) for n in (D, H, H))
    w_ih, w_hh = torch.randn(4 * H, D, generator=g, dtype=torch.float64), torch.randn(4 * H, H, generator=g, dtype=torch.float64)
    b_ih, b_hh = torch.randn(4 * H, generator=g, dtype=torch.float64), torch.randn(4 * H, generator=g, dtype=torch.float64)
    ref = torch.lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh)
    got = _lstm_pointwise(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh, c)
    torch.testing.assert_close(got, ref)


@pytest.mark.parametrize("kind", ["prediction", "synthesis"])
def test_step_with_fused_weights_matches_plain_step(kind):
    model = tiny(kind)
    x, ids, _, _ = batch()
    ref, rs, _ = naive(model, x, ids)
    text = model.one_hot(ids) if model.synthesis else None

    def run(fused):
        state, outs = model.initial_state(2), []
        for t in range(x.shape[1]):
            p, state, _ = model.step(x[:, t], state, text, fused)
            outs.append(p.mu1)
        return torch.stack(outs, 1), state

    with torch.no_grad():
        mu1, state = run(model.fused_weights())
        torch.testing.assert_close(mu1, ref.mu1)
        torch.testing.assert_close(state.c, rs.c)
        mu1, state = run(model.fused_weights(torch.bfloat16))  # the fast sampling path
    assert state.c.dtype == mu1.dtype == torch.float64
    torch.testing.assert_close(mu1, ref.mu1, atol=0.05, rtol=0.05)


def test_recurrent_layers_gradcheck_inputs_weights_and_initial_state(monkeypatch):
    # The hand-written backward passes against finite differences, through every
    # input including the initial state, across backward blocks (BLOCK = 2).
    monkeypatch.setattr(recurrent, "BLOCK", 2)
    g = torch.Generator().manual_seed(5)
    H, B, T, V, M, I = 3, 2, 5, 4, 2, 4
    r = lambda *shape: (0.5 * torch.randn(*shape, generator=g, dtype=torch.float64)).requires_grad_()  # noqa: E731
    f64 = torch.float64
    inp, b, w_hh, h0, c0 = r(I, T, B), r(4 * H), r(4 * H, H), r(B, H), r(B, H)
    inp2 = r(2, T, B)

    def lstm(x1, x2, *a):
        hs, c = recurrent.lstm_layer([x1, x2], *a, f64)
        return hs, c

    assert torch.autograd.gradcheck(lstm, (inp, inp2, r(4 * H, I + 2), b, w_hh, h0, c0))
    text = torch.nn.functional.one_hot(torch.tensor([[0, 2, 1], [3, 3, 0]]), V).to(f64)
    x, w1, win_w = r(3, T, B), r(4 * H, 3 + V), r(3 * M, H)
    win_b = (torch.tensor([0.0, 0.0, 0.3, 0.3, -1.0, -1.0], dtype=f64)).requires_grad_()
    kappa0, w0 = (0.5 * torch.rand(B, M, generator=g, dtype=f64)).requires_grad_(), r(B, V)

    def window(*a):
        x, weights, start = a[0], recurrent.WindowWeights(*a[1:6]), recurrent.WindowState(*a[6:])
        hs, ws, _, _, c = recurrent.window_layer(x, weights, text, start, f64)
        return hs, ws, c

    assert torch.autograd.gradcheck(window, (x, w1, b, w_hh, win_w, win_b, h0, c0, kappa0, w0))


def test_recurrent_work_buffers_are_not_shared_between_live_graphs(monkeypatch):
    # The layers reuse CPU work buffers from call to call (recurrent._scratch). Two
    # graphs alive at once (say two chunks before one backward), longer and shorter,
    # must give the same outputs and gradients as each on its own.
    monkeypatch.setattr(recurrent, "BLOCK", 3)
    model = tiny("synthesis", hidden=8, mixtures=3)
    long, short = batch(T=12), batch(T=5)

    def grads(*batches):
        model.zero_grad()
        losses = [loss_of(model(x, ids, tmask)[0], x, mask) for x, ids, tmask, mask in batches]
        sum(losses).backward()
        return [float(v.detach()) for v in losses], [p.grad.clone() for p in model.parameters()]

    l1, g1 = grads(long)
    l2, g2 = grads(short)
    both_losses, both = grads(long, short)
    assert both_losses == pytest.approx(l1 + l2, rel=1e-12)
    for a, b, c in zip(g1, g2, both):
        torch.testing.assert_close(a + b, c)


def test_bf16_fast_gradients_agree_with_fp32():
    # The bf16 path (activations stored in bf16, matmuls in bf16) must still point
    # the same way as fp32: cosine similarity of every parameter's gradient.
    model = tiny("synthesis", dtype=torch.float32, hidden=16, mixtures=3)
    x, ids, tmask, mask = batch(T=30, dtype=torch.float32)
    grads = {}
    for bf16 in (False, True):
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_of(model(x, ids, tmask)[0], x, mask)
        loss.backward()
        grads[bf16] = {n: p.grad.clone() for n, p in model.named_parameters()}
        assert all(p.grad.dtype == torch.float32 for p in model.parameters())
    for n, a in grads[False].items():
        cos = torch.nn.functional.cosine_similarity(a.flatten(), grads[True][n].flatten(), dim=0)
        assert cos > 0.98, (n, float(cos))


def test_window_exp_is_exact_zero_far_away_and_close_near():
    q = torch.tensor([-1e4, -60.0, -49.0, -1.0, 0.0], dtype=torch.float64)
    e = recurrent.window_exp(q.clone())
    assert e[0] == 0 and e[1] == 0  # exactly zero: no denormals downstream
    torch.testing.assert_close(e[2:], torch.exp(q[2:]), atol=1e-21, rtol=0)


@pytest.mark.skipif(recurrent._use_count is None, reason="this PyTorch gives no storage use count: nothing is reused")
def test_kept_buffers_are_reused_only_once_released(monkeypatch):
    # recurrent._kept hands out a buffer's memory again only when nothing else
    # holds it (the layers' saved activations, between training steps).
    monkeypatch.setattr(recurrent._SCRATCH, "kept", {}, raising=False)
    a = recurrent._kept("t", (4, 5), torch.float32, "cpu")
    ptr = a.data_ptr()
    row = a[1]  # a view alone keeps it
    del a
    b = recurrent._kept("t", (4, 5), torch.float32, "cpu")
    assert b.data_ptr() != ptr
    del row
    c = recurrent._kept("t", (2, 3), torch.bfloat16, "cpu")  # smaller, other dtype: same memory
    assert c.data_ptr() == ptr
    del b, c
    d = recurrent._kept("t", (100,), torch.float32, "cpu")  # too small: a new one; the small free ones go
    assert len(recurrent._SCRATCH.kept["t"]) == 1
    monkeypatch.setattr(recurrent, "REUSE", False)
    del d
    assert recurrent._kept("t", (100,), torch.float32, "cpu").data_ptr() not in (
        b_.data_ptr() for b_, _ in recurrent._SCRATCH.kept["t"])


def test_release_work_memory_lets_go_and_the_next_step_is_the_same():
    model = tiny("synthesis", dtype=torch.float32, hidden=8, mixtures=3)
    x, ids, tmask, mask = batch(T=12, dtype=torch.float32)

    def loss():
        model.zero_grad()
        value = loss_of(model(x, ids, tmask)[0], x, mask)
        value.backward()
        return float(value.detach()), [p.grad.clone() for p in model.parameters()]

    before, grads = loss()
    assert recurrent._SCRATCH.__dict__.get("bufs")
    recurrent.release_work_memory()
    assert not recurrent._SCRATCH.__dict__
    after, grads2 = loss()
    assert after == before and all(torch.equal(a, b) for a, b in zip(grads, grads2))
