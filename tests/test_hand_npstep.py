"""The CPU sampling step in numpy (npstep.py) against the torch step it replaces."""
import math

import numpy as np
import pytest
import torch

from genseq.hand import HandSampleOptions, HandwritingConfig, HandwritingModel, mdn_params, sample_synthesis
from genseq.hand.fast import npstep
from genseq.hand.mdn import mdn_draw
from genseq.hand.model import pad_texts

ALPHABET = " abcdef"


def model(kind="synthesis", layers=3, seed=0):
    torch.manual_seed(seed)
    return HandwritingModel(HandwritingConfig(kind=kind, alphabet=ALPHABET, hidden=16, layers=layers,
                                              mixtures=4, window=3)).eval()


def random_state(m, B, g):
    s = m.initial_state(B)
    return s._replace(h=torch.randn(s.h.shape, generator=g), c=2 * torch.randn(s.c.shape, generator=g),
                      kappa=None if s.kappa is None else 3 * torch.rand(s.kappa.shape, generator=g),
                      window=None if s.window is None else torch.rand(s.window.shape, generator=g))


@pytest.mark.parametrize("kind,layers", [("synthesis", 3), ("synthesis", 1), ("prediction", 2)])
@pytest.mark.parametrize("precision", [None, torch.bfloat16])
@pytest.mark.parametrize("B", [1, 5])
def test_numpy_step_computes_what_model_step_computes(kind, layers, precision, B):
    m = model(kind, layers)
    g = torch.Generator().manual_seed(B)
    text = m.one_hot(pad_texts(["abc", "fed cab", "a", "bad", "cafe"][:B], ALPHABET, extra=1)[0]) \
        if kind == "synthesis" else None
    fused = m.fused_weights(precision)
    step = npstep.NumpyStep(m, fused, text, 0.5, np.random.default_rng(0))
    for _ in range(3):  # the buffers are reused from call to call
        state, x = random_state(m, B, g), torch.randn(B, 3, generator=g)
        before = [t.clone() for t in state if t is not None]
        with torch.inference_mode():
            _, want, want_phi = m.step(x, state, text, fused)
            _, got, phi = step(x, state)
        for a, b in zip(want, got):
            if a is None:
                assert b is None
            else:
                torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
        if kind == "synthesis":
            torch.testing.assert_close(phi, want_phi, rtol=1e-5, atol=1e-6)
        else:
            assert phi is None
        # The state passed in is left as it was (the word chooser keeps paused rows' old state).
        assert all(torch.equal(a, b) for a, b in zip(before, [t for t in state if t is not None]))


@pytest.mark.parametrize("kind,layers", [("synthesis", 3), ("prediction", 2)])
@pytest.mark.parametrize("bias", [0.0, 1.5])
def test_the_whole_step_draws_what_the_torch_step_draws_from_the_same_numbers(kind, layers, bias):
    # The point NumpyStep returns is mdn_draw of model.step's mixture, given the random
    # numbers it took from its generator (replayed here from a twin generator, same order).
    m, B = model(kind, layers), 6
    with torch.no_grad():
        m.output.linear.bias[0] = 0.0  # eos logit near 0: both pen states occur
    g = torch.Generator().manual_seed(3)
    text = m.one_hot(pad_texts(["abc", "fed cab", "a", "bad", "cafe", "ace"], ALPHABET, extra=1)[0]) \
        if kind == "synthesis" else None
    fused = m.fused_weights(torch.bfloat16)
    step = npstep.NumpyStep(m, fused, text, bias, np.random.default_rng(5))
    twin = np.random.default_rng(5)
    kept, pens = [], 0.0
    for _ in range(4):
        state, x = random_state(m, B, g), torch.randn(B, 3, generator=g)
        with torch.inference_mode():
            params, _, _ = m.step(x, state, text, fused)
            got, new, phi = step(x, state)
        race = torch.from_numpy(twin.standard_exponential((B, m.config.mixtures)))
        z = torch.from_numpy(twin.standard_normal((B, 2), dtype=np.float32))
        u = torch.from_numpy(twin.random(B, dtype=np.float32))
        want = mdn_draw(params, bias, race.float(), z, u)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
        pens += float(want[:, 2].sum())
        kept.append((got, new, got.clone(), [t.clone() for t in new if t is not None]))
    assert 0 < pens < 4 * B
    for got, new, got_then, new_then in kept:  # later steps wrote into nothing an earlier step returned
        assert torch.equal(got, got_then)
        assert all(torch.equal(a, b) for a, b in zip([t for t in new if t is not None], new_then))


def test_one_step_object_serves_any_batch_size():
    m = model("prediction", 2)
    fused = m.fused_weights()
    step = npstep.NumpyStep(m, fused, None, 0.0, np.random.default_rng(0))
    g = torch.Generator().manual_seed(0)
    for B in (5, 1, 3):
        state, x = random_state(m, B, g), torch.randn(B, 3, generator=g)
        with torch.inference_mode():
            _, want, _ = m.step(x, state, None, fused)
            got_x, got, _ = step(x, state)
        assert got_x.shape == (B, 3)
        torch.testing.assert_close(got.h, want.h, rtol=1e-5, atol=1e-5)


def draw_inputs(seed: int, B: int, K: int):
    """Raw outputs y (B, 1 + 6K) and the random numbers of one draw: race, z, u."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(B, 1 + 6 * K, generator=g) * 2
    race = torch.empty(B, K).exponential_(1.0, generator=g)
    return y, race, torch.randn(B, 2, generator=g), torch.rand(B, generator=g)


@pytest.mark.parametrize("bias", [0.0, 0.75, 3.0])
def test_numpy_draw_is_mdn_draw_given_the_same_random_numbers(bias):
    B, K = 64, 5
    y, race, z, u = draw_inputs(7, B, K)
    want = mdn_draw(mdn_params(y, K), bias, race, z, u)
    got = npstep.NumpyStep.draw(y.numpy(), bias, race.numpy(), z.numpy(), u.numpy())
    assert got.dtype == np.float32
    torch.testing.assert_close(torch.from_numpy(got), want, rtol=1e-5, atol=1e-5)
    assert 0 < want[:, 2].sum() < B  # both pen states occur, so the pen test is tested


def test_numpy_draws_follow_the_mixture_weights():
    # Components 100 apart with tiny σ: which one was drawn is plain from dx; counts follow π (bias 0).
    K, B = 4, 40000
    y = np.zeros((B, 1 + 6 * K), np.float32)
    y[:, 1:1 + K] = [0.0, 1.0, -1.0, 0.5]
    y[:, 1 + K:1 + 2 * K] = [0.0, 100.0, 200.0, 300.0]
    y[:, 1 + 3 * K:1 + 5 * K] = -5.0
    rng = np.random.default_rng(0)
    pts = npstep.NumpyStep.draw(y, 0.0, rng.standard_exponential((B, K), dtype=np.float32),
                                rng.standard_normal((B, 2), dtype=np.float32), rng.random(B, dtype=np.float32))
    counts = np.bincount(np.round(pts[:, 0] / 100).astype(int), minlength=K) / B
    pi = np.exp(y[0, 1:1 + K]) / np.exp(y[0, 1:1 + K]).sum()
    np.testing.assert_allclose(counts, pi, atol=0.01)
    assert abs(pts[:, 2].mean() - 0.5) < 0.01  # eos logit 0: the pen lifts half the time


def test_the_cpu_uses_the_numpy_step_and_can_be_told_not_to(monkeypatch):
    m = model()
    assert npstep.usable(m)
    assert not npstep.usable(model().double())  # float64 stays with torch
    opts = HandSampleOptions(seed=2, resample_bad=0, max_steps_per_char=8)
    a = sample_synthesis(m, ["abc", "fed"], opts)
    b = sample_synthesis(m, ["abc", "fed"], opts)
    assert all(np.array_equal(x.points, y.points) for x, y in zip(a, b))  # same seed, same lines
    monkeypatch.setattr(npstep, "ENABLED", False)
    assert not npstep.usable(m)
    c = sample_synthesis(m, ["abc", "fed"], opts)  # the torch step (as on a GPU): other draws
    assert not all(len(x.points) == len(y.points) and np.allclose(x.points, y.points) for x, y in zip(a, c))


def test_numpy_and_torch_steps_write_alike():
    # The same model through either step: other random numbers, the same distribution
    # of line lengths (window speed 1/4 character per point, so ~4 (U + 1/2) points).
    m = model(layers=2)
    M = m.config.window
    with torch.no_grad():
        m.window_layer.weight[2 * M:].zero_()
        m.window_layer.bias[2 * M:].fill_(math.log(0.25))
    opts = HandSampleOptions(seed=1, resample_bad=0, finish_stroke=0)
    lengths = {}
    for on in (True, False):
        npstep.ENABLED = on
        try:
            lines = sample_synthesis(m, ["abcdef"] * 16, opts)
        finally:
            npstep.ENABLED = True
        lengths[on] = [len(ln.points) for ln in lines]
        assert all(abs(n - 4 * 6.5) <= 3 for n in lengths[on])


def test_far_positions_get_exactly_zero_weight_as_in_the_torch_step():
    # recurrent.window_exp floors the exponent and subtracts exp(floor): φ is exactly 0 far
    # from the window (sample._attended relies on it), not 1e-22.
    m = model()
    M = m.config.window
    with torch.no_grad():
        m.window_layer.bias[M:2 * M].fill_(math.log(30.0))  # β = 30: narrow Gaussians
    text = m.one_hot(pad_texts(["abcdef abc"], ALPHABET, extra=1)[0])
    fused = m.fused_weights()
    state = m.initial_state(1)
    x = torch.zeros(1, 3)
    with torch.inference_mode():
        _, _, want = m.step(x, state, text, fused)
        _, _, got = npstep.NumpyStep(m, fused, text, 0.0, np.random.default_rng(0))(x, state)
    assert (want == 0).sum() > 5
    assert torch.equal(got == 0, want == 0)


def test_a_bias_per_row_draws_each_row_as_its_own_single_bias_would():
    B, K = 32, 5
    y, race, z, u = draw_inputs(8, B, K)
    rows = np.where(np.arange(B) % 3 == 0, 2.5, 0.75)  # (B,) float64
    got = npstep.NumpyStep.draw(y.numpy(), rows, race.numpy(), z.numpy(), u.numpy())
    for b in (0.75, 2.5):
        alone = npstep.NumpyStep.draw(y.numpy(), b, race.numpy(), z.numpy(), u.numpy())
        np.testing.assert_array_equal(got[rows == b], alone[rows == b])  # bit for bit
    torch_rows = mdn_draw(mdn_params(y, K), torch.from_numpy(rows), race, z, u)
    torch.testing.assert_close(torch.from_numpy(got), torch_rows, rtol=1e-5, atol=1e-5)
