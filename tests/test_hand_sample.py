"""Handwriting sampling: determinism, bias, stopping and bad-line detection on tiny models."""
import math

import numpy as np
import pytest
import torch

from genseq.errors import GenseqError
from genseq.hand import (
    HandSampleOptions, HandwritingConfig, HandwritingModel, denormalise, mdn_params, mdn_sample,
    sample_synthesis, sample_unconditional,
)

ALPHABET = " abcdef"


def synth(step_per_point: float, seed=0):
    """Tiny synthesis model whose window moves exactly `step_per_point` characters per point."""
    torch.manual_seed(seed)
    m = HandwritingModel(HandwritingConfig(kind="synthesis", alphabet=ALPHABET, hidden=8,
                                           layers=2, mixtures=3, window=2)).eval()
    M = m.config.window
    with torch.no_grad():
        m.window_layer.weight[2 * M :].zero_()
        m.window_layer.bias[2 * M :].fill_(math.log(step_per_point))  # κ̂: eq. 51 increment
        m.window_layer.weight[M : 2 * M].zero_()
        m.window_layer.bias[M : 2 * M].fill_(math.log(4.0))  # β: narrow enough to resolve characters
    return m


# finish_stroke=0: Graves' stopping rule exactly (the stroke-finishing extension has its own test).
OPTS = HandSampleOptions(seed=3, max_steps_per_char=10, stall_steps=25, resample_bad=0, finish_stroke=0)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_lines_end_after_their_last_character(precision):
    m = synth(0.25)  # 4 points per character
    texts = ["abc", "fed cab"]
    lines = sample_synthesis(m, texts, HandSampleOptions(**{**OPTS.__dict__, "precision": precision}))
    assert [ln.status for ln in lines] == ["ok", "ok"]
    for ln, text in zip(lines, texts):
        # κ passes U + 1/2 after about 4 (U + 1/2) points.
        assert abs(len(ln.points) - 4 * (len(text) + 0.5)) <= 3
        assert ln.points.dtype == np.float32 and ln.points.shape[1] == 3
        assert ln.phi.shape == (len(ln.points), len(text))
        assert ln.points[-1, 2] == 1.0  # last stroke closed


def test_the_last_stroke_is_finished_up_to_its_pen_lift():
    m = synth(0.25)
    texts = ["abc", "fed cab", "cab", "bad", "ace fad"]
    base = HandSampleOptions(**{**OPTS.__dict__, "seed": 4})
    cut = sample_synthesis(m, texts, base)
    opts = HandSampleOptions(**{**base.__dict__, "finish_stroke": 6})
    done = sample_synthesis(m, texts, opts)
    longer = 0
    for a, b in zip(cut, done):
        # The same draws up to Graves' stopping step; then at most 6 more points, up to the first lift.
        n = len(a.points)
        assert np.array_equal(a.points[:-1], b.points[: n - 1]) and b.status == a.status == "ok"
        assert n <= len(b.points) <= n + 6
        if len(b.points) > n:
            longer += 1
            # It ends at the first pen lift since the stopping step: no lift before it.
            assert not (b.points[n - 1 : -1, 2] > 0.5).any()
    assert longer >= 1  # the random pen lifts make some lines end later


def test_stall_skip_and_run_on_are_flagged():
    stalled = sample_synthesis(synth(0.01), ["abc"], OPTS)[0]
    assert stalled.status == "stalled" and len(stalled.points) == 30  # cut at 10 per char
    ran_on = sample_synthesis(synth(0.08), ["abcdef"], OPTS)[0]  # needs ~81 > 60 points, no long stall
    assert ran_on.status == "ran_on"
    skipped = sample_synthesis(synth(2.5), ["abcdef"], OPTS)[0]
    assert skipped.status == "skipped"


def test_resample_bad_retries_only_bad_lines():
    lines = sample_synthesis(synth(0.01), ["ab", "c"], HandSampleOptions(**{**OPTS.__dict__, "resample_bad": 2}))
    assert [ln.tries for ln in lines] == [3, 3]
    good = sample_synthesis(synth(0.25), ["ab"], HandSampleOptions(**{**OPTS.__dict__, "resample_bad": 2}))
    assert good[0].tries == 1


def test_sampling_is_deterministic_given_the_seed():
    m = synth(0.25)
    a = sample_synthesis(m, ["abc", "de"], OPTS)
    b = sample_synthesis(m, ["abc", "de"], OPTS)
    c = sample_synthesis(m, ["abc", "de"], HandSampleOptions(**{**OPTS.__dict__, "seed": 4}))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.points, y.points)
    assert not np.array_equal(a[0].points[:5], c[0].points[:5])


def test_priming_continues_with_the_window_past_the_prime_text():
    m = synth(0.25)
    g = np.random.default_rng(0)
    prime_pts = g.normal(size=(4 * 4, 3)).astype(np.float32)
    prime_pts[:, 2] = 0
    lines = sample_synthesis(m, ["ab", "cde"], OPTS, prime=(prime_pts, "fed"))
    for ln, text in zip(lines, ["ab", "cde"]):
        assert ln.status == "ok" and ln.phi.shape == (len(ln.points), len(text))
        # The window starts about 16/4 = 4 characters in ("fed "), so this line
        # takes about 4 (U + 1/2) points, not 4 (4 + U + 1/2).
        assert len(ln.points) <= 4 * (len(text) + 0.5) + 3


def test_bias_sharpens_mixture_samples():
    g = torch.Generator().manual_seed(0)
    K, B = 4, 4000
    y = torch.randn(1, 1 + 6 * K, generator=g).expand(B, -1)
    params = mdn_params(y, K)
    var = []
    for bias in (0.0, 1.0, 3.0):
        pts = mdn_sample(params, bias, torch.Generator().manual_seed(1))
        var.append(pts[:, :2].var(0).sum().item())
    assert var[0] > var[1] > var[2]
    # With a large bias the most likely component dominates and σ shrinks by e^-b.
    k = params.log_pi[0].argmax()
    pts = mdn_sample(params, 8.0, torch.Generator().manual_seed(1))
    torch.testing.assert_close(pts[:, 0].mean(), params.mu1[0, k], atol=1e-3, rtol=0)


def test_unconditional_sampling_shapes_and_determinism():
    torch.manual_seed(0)
    m = HandwritingModel(HandwritingConfig(kind="prediction", hidden=8, layers=2, mixtures=3)).eval()
    a = sample_unconditional(m, 3, 20, OPTS)
    b = sample_unconditional(m, 3, 20, OPTS)
    assert len(a) == 3 and a[0].points.shape == (20, 3)
    np.testing.assert_array_equal(a[2].points, b[2].points)
    assert set(np.unique(a[0].points[:, 2])) <= {0.0, 1.0}
    with pytest.raises(GenseqError):
        sample_synthesis(m, ["ab"], OPTS)


def test_bad_input_is_a_genseq_error():
    m = synth(0.25)
    with pytest.raises(GenseqError):
        sample_synthesis(m, ["xyz"], OPTS)
    with pytest.raises(GenseqError):
        sample_synthesis(m, [""], OPTS)


def test_denormalise():
    pts = np.array([[1.0, -1.0, 1.0]], dtype=np.float32)
    np.testing.assert_allclose(denormalise(pts, (0.5, 0.0), (2.0, 3.0)), [[2.5, -3.0, 1.0]])


def test_own_start_drops_strokes_that_finish_the_priming_text():
    import numpy as np
    from genseq.hand.sample import _own_start
    # positions 0-1 are the priming text (P = 2), 2-3 the line's own characters
    phi = np.array([[0, 1, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], float)
    pts = np.zeros((5, 3))
    pts[1, 2] = 1.0  # a stroke ends at point 1; point 2 starts the stroke that reaches position 2
    assert _own_start(phi, pts, P=2) == 2
    pts[1, 2] = 0.0  # one stroke from the start: nothing can be dropped
    assert _own_start(phi, pts, P=2) == 0
    assert _own_start(phi[:, :2], pts, P=2) == 0  # never reached: keep everything


def test_steps_with_no_attention_keep_the_previous_position():
    # φ is exactly zero everywhere when every window Gaussian sits between
    # characters (exponents floored, recurrent.window_exp): such a step must not
    # count as attending position 0, or a good line reads as "skipped".
    from genseq.hand.sample import _attended, _status
    phi = np.zeros((9, 4), np.float32)
    for t, pos in enumerate([0, 0, -1, 1, -1, -1, 2, 3, 3]):
        if pos >= 0:
            phi[t, pos] = 1.0
    assert _attended(phi).tolist() == [0, 0, 0, 1, 1, 1, 2, 3, 3]
    assert _status(phi, 0, 3, True, stall_steps=5) == "ok"
    assert _attended(np.zeros((3, 2), np.float32)).tolist() == [0, 0, 0]
    lead = np.zeros((3, 2), np.float32)
    lead[2, 1] = 1.0
    assert _attended(lead).tolist() == [1, 1, 1]
