"""Handwriting sampling: determinism, bias, stopping and bad-line detection on tiny models."""
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from genseq.errors import GenseqError
from genseq.hand import (
    HandSampleOptions, HandwritingConfig, HandwritingModel, denormalise, mdn_params, mdn_sample,
    sample_synthesis, sample_unconditional,
)

ALPHABET = " abcdef"


def synth(step_per_point: float, seed=0, alphabet=ALPHABET):
    """Tiny synthesis model whose window moves exactly `step_per_point` characters per point."""
    torch.manual_seed(seed)
    m = HandwritingModel(HandwritingConfig(kind="synthesis", alphabet=alphabet, hidden=8,
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
    # After a closing mark the stroke in progress would be a new one: lines ending in '.' are not finished.
    m = synth(0.25, alphabet=ALPHABET + ".")
    dotted = [t + "." for t in texts]
    for a, b in zip(sample_synthesis(m, dotted, base), sample_synthesis(m, dotted, opts)):
        np.testing.assert_array_equal(a.points, b.points)
    assert sum(len(b.points) > len(a.points) for a, b in zip(sample_synthesis(m, texts, base),
                                                             sample_synthesis(m, texts, opts))) >= 1


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


def test_priming_runs_each_distinct_text_once_with_the_state_of_priming_every_row(monkeypatch):
    from genseq.hand.model import pad_texts
    from genseq.hand.sample import _primed
    m = synth(0.5)  # the window ends up about 5.5 characters in: on the lines' own text
    pts = torch.as_tensor(np.random.default_rng(1).normal(size=(12, 3)), dtype=torch.float32)
    full = ["fed ab", "fed cde", "fed ab", "fed ab", "fed cde"]  # two lines, their candidates mixed
    ids, _ = pad_texts(full, m.config.alphabet, extra=1)
    with torch.no_grad():
        _, want, _ = m(pts[:-1].expand(len(full), -1, -1), ids, None, m.initial_state(len(full)))
        batches = []
        forward = type(m).forward
        monkeypatch.setattr(type(m), "forward", lambda self, x, *a: batches.append(len(x)) or forward(self, x, *a))
        got, x = _primed(m, pts, ids, full)
    assert batches == [2]  # "fed ab" and "fed cde", once each
    assert not torch.allclose(want.window[0], want.window[1])  # the two texts prime differently
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)
    assert torch.equal(x, pts[-1].expand(len(full), -1))


def test_broken_weights_give_a_clear_error_not_nan_points():
    m = synth(0.25)
    with torch.no_grad():
        m.output.linear.bias.fill_(float("nan"))
    with pytest.raises(GenseqError, match="non-finite points"):
        sample_synthesis(m, ["ab"], OPTS)
    p = HandwritingModel(HandwritingConfig(kind="prediction", hidden=8, layers=2, mixtures=3)).eval()
    with torch.no_grad():
        p.output.linear.weight.fill_(float("nan"))
    with pytest.raises(GenseqError, match="non-finite points"):
        sample_unconditional(p, 2, 5, OPTS)


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
    from genseq.hand.lines import own_start
    # positions 0-1 are the priming text (P = 2), 2-3 the line's own characters
    phi = np.array([[0, 1, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], float)
    pts = np.zeros((5, 3))
    pts[1, 2] = 1.0  # a stroke ends at point 1; point 2 starts the stroke that reaches position 2
    assert own_start(phi, pts, P=2) == 2
    pts[1, 2] = 0.0  # one stroke from the start: nothing can be dropped
    assert own_start(phi, pts, P=2) == 0
    assert own_start(phi[:, :2], pts, P=2) == 0  # never reached: keep everything


def _strokes(*specs):
    # specs: (attended position, [(dx, dy), ...]) per stroke -> points (N, 3), top (N,)
    pts, top = [], []
    for pos, path in specs:
        for k, (dx, dy) in enumerate(path):
            pts.append((dx, dy, float(k == len(path) - 1)))
            top.append(pos)
    return np.array(pts, np.float32), np.array(top)


LETTER = [(1.0, 0.0), (0.0, 2.0), (1.0, -2.0), (0.5, 1.0)]  # a letter-sized stroke
DOT = [(0.6, 0.0), (0.05, 0.02)]  # a pen-up move, then a dot


def test_a_second_dot_after_a_period_is_dropped_and_later_strokes_stay_put():
    from genseq.hand.lines import extra_dots, without
    # "ab. c": a (0), b (1), '.' (2), ' ' (3), c (4); priming text of P = 2 before it.
    pts, top = _strokes((2, LETTER), (3, LETTER), (4, DOT), (4, DOT), (5, DOT), (6, LETTER))
    drop = extra_dots(pts, top, "ab. c", P=2)  # three dots in a row: the rightmost stays
    assert drop.tolist() == [False] * 8 + [True] * 4 + [False] * 6
    kept = without(pts, drop)
    ends = np.cumsum(pts[:, :2], 0)
    # every kept point is where it was: the first point after the dropped dots carries their offsets
    np.testing.assert_allclose(np.cumsum(kept[:, :2], 0), ends[~drop], atol=1e-6)
    np.testing.assert_array_equal(kept[:, 2], pts[~drop, 2])
    # strokes that are not dot-sized stay; no period, nothing dropped
    assert not extra_dots(pts, top, "ab, c", P=2).any()
    line_end, top_end = _strokes((0, LETTER), (1, LETTER), (2, DOT), (3, DOT))  # "ab." then the end position
    assert extra_dots(line_end, top_end, "ab.", P=0).tolist() == [False] * 8 + [True, True, False, False]
    line_end[-1, 2] = 0.0  # the last dot still open when the line ended: a stroke all the same
    assert extra_dots(line_end, top_end, "ab.", P=0).tolist() == [False] * 8 + [True, True, False, False]
    # "hi.": the dot of the i, begun while the window is on the '.', before the period or after
    # it, is kept (it is left of the period and higher); a stray dot up and right is not
    high_dot, period = [(0.1, 2.0), (0.05, 0.02)], [(0.3, -2.0), (0.05, 0.02)]
    hi, top_hi = _strokes((0, LETTER), (1, LETTER), (2, LETTER), (2, high_dot), (2, period))
    assert not extra_dots(hi, top_hi, "hi.", P=0).any()
    period, left_high_dot = [(0.4, -0.1), (0.05, 0.02)], [(-0.6, 2.0), (0.05, 0.02)]
    hi, top_hi = _strokes((0, LETTER), (1, LETTER), (2, LETTER), (2, period), (2, left_high_dot))
    assert not extra_dots(hi, top_hi, "hi.", P=0).any()
    stray = [(0.8, 2.0), (0.02, 0.0)]
    late, top_late = _strokes((0, LETTER), (1, LETTER), (2, LETTER), (3, period), (3, stray))
    assert extra_dots(late, top_late, "abc.", P=0).tolist() == [False] * 14 + [True, True]
    quote, top_q = _strokes((0, LETTER), (1, LETTER), (2, period), (2, stray))  # 'ab."': a closing mark
    assert not extra_dots(quote, top_q, 'ab."', P=0).any()
    lagging, top_lag = _strokes((0, LETTER), (1, LETTER), (2, LETTER), (3, LETTER), (4, DOT), (4, DOT), (5, DOT))
    assert not extra_dots(lagging, top_lag, "abcd... e", P=0).any()  # "...": dots may lag the window
    dash = [(0.5, 0.0), (0.3, 0.1)]  # "ab." written as a dot, then a short dash: the dot stays
    dotdash, top_dd = _strokes((0, LETTER), (1, LETTER), (2, DOT), (3, dash))
    assert extra_dots(dotdash, top_dd, "ab.", P=0).tolist() == [False] * 10 + [True, True]
    # "(ab).": the period begun while the window is still on ')', then a second dot on '.'
    bracket, top_br = _strokes((0, LETTER), (1, LETTER), (2, LETTER), (3, LETTER), (3, DOT), (4, DOT))
    assert extra_dots(bracket, top_br, "(ab).", P=0).tolist() == [False] * 16 + [True, True, False, False]
    ellipsis, top_ell = _strokes((0, LETTER), (1, LETTER), (2, LETTER), (3, DOT), (4, DOT), (5, DOT))
    assert not extra_dots(ellipsis, top_ell, "abc...", P=0).any()  # one dot per '.': all kept


def test_steps_with_no_attention_keep_the_previous_position():
    # φ is exactly zero everywhere when every window Gaussian sits between
    # characters (exponents floored, recurrent.window_exp): such a step must not
    # count as attending position 0, or a good line reads as "skipped".
    from genseq.hand.lines import attended, line_status as status
    phi = np.zeros((9, 4), np.float32)
    for t, pos in enumerate([0, 0, -1, 1, -1, -1, 2, 3, 3]):
        if pos >= 0:
            phi[t, pos] = 1.0
    assert attended(phi).tolist() == [0, 0, 0, 1, 1, 1, 2, 3, 3]
    assert status(phi, 0, 3, True, stall_steps=5) == "ok"
    assert attended(np.zeros((3, 2), np.float32)).tolist() == [0, 0, 0]
    lead = np.zeros((3, 2), np.float32)
    lead[2, 1] = 1.0
    assert attended(lead).tolist() == [1, 1, 1]


def test_word_starts():
    from genseq.hand.words import word_starts
    assert word_starts("ab  cd e") == [4, 7]
    assert word_starts("abc") == [] and word_starts(" ab") == [1]


def test_candidates_carry_on_from_the_best_at_every_word_end():
    m = synth(0.25)  # 4 points per character: every row reaches the next word at the same step
    calls = []

    def score(pieces, texts, phis):
        s = np.array([float(p[:, 0].sum()) for p in pieces])  # any function of the strokes
        calls.append((list(texts), [p.copy() for p in pieces], s))
        return s

    C, texts = 3, ["ab cd ef", "fed"]
    opts = HandSampleOptions(**{**OPTS.__dict__, "seed": 5})
    lines = sample_synthesis(m, [t for t in texts for _ in range(C)], opts, words=(C, score))
    # One choice per word end, each among the C candidates of the line, scored on the line so far.
    assert [c[0] for c in calls] == [["ab"] * C, ["ab cd"] * C]
    best = [c[1][int(np.argmax(c[2]))] for c in calls]
    for ln in lines[:C]:
        for piece, space in zip(best, (2, 5)):  # every candidate goes on from the best piece of each word
            np.testing.assert_array_equal(ln.points[: len(piece)], piece)
            # The piece ends at the first pen lift once the window reached the space after the word,
            # or, if the window got two positions further first, at the last lift before that.
            at = ln.phi.argmax(1)
            spaced, ran_on = int(np.argmax(at >= space)), int(np.argmax(at >= space + 2))
            lifts = np.flatnonzero(ln.points[:, 2] > 0.5)
            after = lifts[(lifts >= spaced) & (lifts <= ran_on)]
            expect = after[0] + 1 if len(after) else lifts[lifts <= ran_on][-1] + 1
            assert len(piece) == expect
    assert len(best[1]) > len(best[0]) > 0
    # ... and writes the rest with draws of its own
    assert not all(np.array_equal(lines[0].points, ln.points) for ln in lines[1:C])
    assert all(ln.status == "ok" for ln in lines)
    # Without word choice the same seed gives independent lines that differ in the first word.
    free = sample_synthesis(m, [t for t in texts for _ in range(C)], opts)
    assert not np.array_equal(free[0].points[: len(best[0])], free[1].points[: len(best[0])])
    with pytest.raises(ValueError):
        sample_synthesis(m, ["ab cd"] * 2, OPTS, words=(3, score))
    with pytest.raises(ValueError):
        sample_synthesis(m, ["ab cd", "ab ce"], OPTS, words=(2, score))


def test_a_paused_candidate_waits_and_a_stalled_one_is_left_behind():
    from genseq.hand.model import HandState
    from genseq.hand.words import NEVER, WordChoice
    got = []

    def score(pieces, texts, phis):
        got.append(([p.copy() for p in pieces], texts))
        return np.zeros(len(pieces))

    B, T, U1, L, H = 4, 10, 6, 1, 4
    counts = torch.ones(B, U1, dtype=torch.bool)
    g = torch.Generator().manual_seed(0)
    state = HandState(*(torch.randn(*s, generator=g) for s in ((L, B, H), (L, B, H), (B, 2), (B, 5))))
    x = torch.randn(B, 3, generator=g)
    wc = WordChoice(["ab cd"] * 4, 2, 0, counts, T, score, patience=4, start=(state, x))  # 2 lines, 2 each
    points, phis = torch.zeros(B, T, 3), torch.zeros(B, T, U1)
    finished = torch.zeros(B, dtype=torch.bool)
    news = []
    for t in range(T):
        new = HandState(*(torch.randn(*s, generator=g) for s in ((L, B, H), (L, B, H), (B, 2), (B, 5))))
        news.append(new)
        x_new = torch.randn(B, 3, generator=g)
        x_new[:, 2] = float(t in (1, 3))  # every row lifts its pen after points 1 and 3
        phi = torch.zeros(B, U1)
        phi[:, 1] = 1.0
        if t >= 2:
            phi[0, 2] = 2.0  # row 0 (line 0) reaches the space at step 2; row 1 and line 1 stay on 'b'
        points[:, t], phis[:, t] = x_new, phi
        state, x = wc.advance(t, state, new, x, x_new, phi)
        if t == 4:
            wc.check(5, points, phis, state, x, finished)  # paused at its lift (step 3), within patience: waits
            assert got == [] and wc.rows.paused.tolist() == [True, False, False, False]
    assert wc.rows.crossed.tolist() == [3, -1, -1, -1]
    assert torch.equal(state.h[:, 0], news[3].h[:, 0])  # row 0 stood still from step 3 ...
    assert torch.equal(state.h[:, 1], news[T - 1].h[:, 1])  # ... the others went on
    wc.check(T, points, phis, state, x, finished)
    assert len(got) == 1 and got[0][1] == ["ab"]  # only the row that made it, up to its pause
    np.testing.assert_array_equal(got[0][0][0], points[0, :4].numpy())
    for t, t3 in ((state.h, news[3].h), (state.c, news[3].c)):  # row 0's state at its step 3, twice
        assert torch.equal(t[:, 0], t3[:, 0]) and torch.equal(t[:, 1], t3[:, 0])
        assert not torch.equal(t[:, 2], t[:, 3])  # line 1 untouched
    for t in (state.kappa, state.window, x, points, phis, wc.rows.live):
        assert torch.equal(t[0], t[1])
    for t in (state.kappa, state.window, x, points):
        assert not torch.equal(t[2], t[3])
    assert wc.rows.live[0].tolist() == [True] * 4 + [False] * (T - 4)  # the paused steps are not part of its line
    assert [ln.chosen for ln in wc.lines] == [1, 0] and wc.rows.target.tolist() == [NEVER, NEVER, 2, 2]
    assert wc.rows.paused.tolist() == [False] * 4 and wc.rows.spaced.tolist() == [False] * 4
    # A window two positions past the space pauses a row even without a pen lift.
    two = HandState(*(t[:, :2] if t.dim() == 3 else t[:2] for t in state))
    wc2 = WordChoice(["ab cd"] * 2, 2, 0, counts[:2], T, score, patience=4, start=(two, x[:2]))
    phi = torch.zeros(2, U1)
    phi[:, 4] = 1.0
    lifted = torch.zeros(2, 3)
    wc2.advance(0, two, two, x[:2], lifted, phi)
    assert wc2.rows.paused.tolist() == [True, True]


def test_word_choice_prefers_healthy_attention():
    from genseq.hand.lines import attention_ok
    phi = np.eye(5)[[0, 0, 1, 2, 3, 4]].astype(np.float32)
    assert attention_ok(phi, 0, 4, stall_steps=5)
    assert not attention_ok(phi[[0, 1, 3, 4, 5]], 0, 4, stall_steps=5)  # position 1 skipped
    assert not attention_ok(phi[[0, 0, 0, 0, 0, 1, 2, 3]], 0, 3, stall_steps=5)  # held 5 steps
    assert not attention_ok(phi[:0], 0, 1, stall_steps=5)


def test_word_choice_after_priming_scores_the_line_own_strokes():
    m = synth(0.25)
    prime_pts = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    prime_pts[:, 2] = 0
    calls = []

    def score(pieces, texts, phis):
        calls.append((texts, [p.copy() for p in pieces]))
        return np.array([float(p[:, 1].sum()) for p in pieces])

    lines = sample_synthesis(m, ["ab cd", "ab cd"], OPTS, prime=(prime_pts, "fed"), words=(2, score))
    assert [c[0] for c in calls] == [["ab", "ab"]]
    pieces = calls[0][1]
    best = pieces[int(np.argmax([p[:, 1].sum() for p in pieces]))]
    for ln in lines:  # the pieces are the line's own strokes, as the written line has them
        np.testing.assert_array_equal(ln.points[: len(best)], best)
        assert ln.status == "ok" and ln.phi.shape[1] == len("ab cd")


def test_a_word_no_candidate_wrote_is_written_again(monkeypatch):
    from genseq.hand import words
    from genseq.hand.model import HandState
    from genseq.hand.words import WordChoice
    monkeypatch.setattr(words, "REDOS", 1)
    calls = []

    def score(pieces, texts, phis):
        calls.append(len(pieces))
        return np.full(len(pieces), -10.0)  # every candidate misread: 10 nats below the line so far

    B, T, U1 = 2, 10, 6
    g = torch.Generator().manual_seed(0)
    shapes = ((1, B, 4), (1, B, 4), (B, 2), (B, 5))
    state = HandState(*(torch.randn(*s, generator=g) for s in shapes))
    state.h[:, 1], x = state.h[:, 0], torch.randn(B, 3, generator=g)  # the C rows of a line start equal
    x[1] = x[0]
    wc = WordChoice(["ab cd"] * 2, 2, 0, torch.ones(B, U1, dtype=torch.bool), T, score, patience=4,
                    start=(state, x))
    start = (state.h[:, 0].clone(), x[0].clone())
    points, phis = torch.zeros(B, T, 3), torch.zeros(B, T, U1)
    finished = torch.zeros(B, dtype=torch.bool)
    for t in range(T):
        x_new = torch.randn(B, 3, generator=g)
        x_new[:, 2] = float(t in (3, 7))  # pen lifts after points 3 and 7
        phi = torch.zeros(B, U1)
        phi[:, 2 if t >= 2 else 1] = 1.0  # both rows reach the space at step 2
        points[:, t], phis[:, t] = x_new, phi
        state, x = wc.advance(t, state, HandState(*(torch.randn(*s, generator=g) for s in shapes)), x, x_new, phi)
        if t == 4:
            wc.check(5, points, phis, state, x, finished)  # both paused at step 3, all read badly: again
            assert calls == [2] and [(ln.chosen, ln.redos_left) for ln in wc.lines] == [(0, 0)]
            assert torch.equal(state.h[:, 0], start[0]) and torch.equal(state.h[:, 1], start[0])
            assert torch.equal(x[1], start[1]) and not wc.rows.live[:, :5].any()  # steps 0-4 are not the line's
    wc.check(T, points, phis, state, x, finished)  # paused again at step 7; no redo left: the best is kept
    assert calls == [2, 2] and [(ln.chosen, ln.score) for ln in wc.lines] == [(1, -10.0)]
    assert wc.rows.live[0].tolist() == [False] * 5 + [True] * 3 + [False] * 2


def test_a_stray_dot_after_an_exclamation_or_question_mark_is_dropped():
    from genseq.hand.lines import extra_dots
    ab = [(0, LETTER), (0, LETTER), (1, LETTER), (1, LETTER)]  # 16 points
    bar = [(0.3, 0.5), (0.1, 2.0)]  # a '!' bar, letter-tall: not dot-sized
    mark_dot, stray = [(-0.1, -2.6), (0.02, 0.0)], [(1.5, 1.2), (0.02, 0.0)]
    # "ab!" then the end: bar and dot on '!', a stray dot up and to the right on the end position
    line, top = _strokes(*ab, (2, bar), (2, mark_dot), (3, stray))
    assert extra_dots(line, top, "ab!", P=0).tolist() == [False] * 20 + [True, True]
    assert extra_dots(line, top, "ab?", P=0).tolist() == [False] * 20 + [True, True]
    assert not extra_dots(line, top, "abc", P=0).any()  # no mark: nothing dropped
    # a space and a word after it: the same (the stray begun while the window is on the '!')
    line2, top2 = _strokes(*ab, (2, bar), (2, mark_dot), (2, stray), (4, LETTER))
    assert extra_dots(line2, top2, "ab! c", P=0).tolist() == [False] * 20 + [True, True] + [False] * 4
    assert not extra_dots(line2, top2, "ab!c", P=0).any()  # a letter follows: the stray may be its start
    # a blip at the foot of the last letter, begun on the '!', before the bar: nothing goes
    blip = [(0.1, -1.0), (0.02, 0.0)]
    line3, top3 = _strokes(*ab, (2, blip), (2, bar), (2, mark_dot))
    assert not extra_dots(line3, top3, "ab!", P=0).any()
    # a dot-sized bar: nothing to go by, nothing dropped
    short = [(0.3, 0.3), (0.05, 0.4)]
    line4, top4 = _strokes(*ab, (2, short), (2, mark_dot), (3, stray))
    assert not extra_dots(line4, top4, "ab!", P=0).any()
    # "ab!!": the window may lag on the first mark while the second is written
    line5, top5 = _strokes(*ab, (2, bar), (2, mark_dot), (2, bar), (2, mark_dot))
    assert not extra_dots(line5, top5, "ab!!", P=0).any()


def test_a_character_bias_sharpens_only_while_the_window_is_on_its_characters():
    from genseq.hand.model import pad_texts
    from genseq.hand.sample import char_bias_rows, sharp_positions
    ids, _ = pad_texts(["abc", "ca"], ALPHABET)  # (2, U) ids, 0 padding
    sharp = sharp_positions(ids, ALPHABET, "c")
    assert sharp.tolist() == [[False, False, True], [True, False, False]]
    phi = torch.tensor([[0.1, 0.2, 0.7], [0.1, 0.8, 0.1]])  # row 0 on its 'c', row 1 on its 'a'
    assert char_bias_rows(phi, 0.75, (sharp, 3.0)).tolist() == [3.0, 0.75]
    assert char_bias_rows(phi[1:], 0.75, (sharp[1:], 3.0)) == 0.75  # no row on a sharp character
    assert char_bias_rows(phi, 0.75, None) == 0.75
    # Written: a line without the characters comes out as without a character bias; one with them does not.
    m = synth(0.1)
    plain = sample_synthesis(m, ["abd", "abc"], OPTS)
    sharp_lines = sample_synthesis(m, ["abd", "abc"], replace(OPTS, char_bias=("c", 5.0)))
    np.testing.assert_array_equal(sharp_lines[0].points, plain[0].points)
    assert not np.array_equal(sharp_lines[1].points, plain[1].points)
