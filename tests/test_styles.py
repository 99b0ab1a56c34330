"""The bundled styles: how samples/make_styles.py primes with a candidate and which it keeps."""

import numpy as np
from samples_scripts import load_sample


def _make_styles():
    return load_sample("make_styles")


def test_a_style_carried_in_the_model_primes_like_the_bundled_one():
    # make_styles screens a candidate by putting it in the model's own styles (at the bundled
    # styles' bias): that must write exactly what the same line would as a bundled style.
    from dataclasses import replace
    from genseq.hand.api import DEFAULT_BIAS, WriteOptions, bundled_styles, load_hand_model, write_handwriting
    hm = load_hand_model()
    style = bundled_styles()[2]
    carried = replace(hm, meta={**hm.meta, "styles": [{"text": style.text, "points": style.points.tolist()}]})
    opts = WriteOptions(seed=5, candidates=1, bias=DEFAULT_BIAS)
    _, a = write_handwriting("Tea at 4", hm, replace(opts, style=2))
    _, b = write_handwriting("Tea at 4", carried, opts)
    np.testing.assert_array_equal(a[0].points, b[0].points)
    _, c = write_handwriting("Tea at 4", hm, replace(opts, style=3))
    assert len(c[0].points) != len(a[0].points) or not np.array_equal(c[0].points, a[0].points)


def test_choose_styles_keeps_the_best_or_replaces_only_where_a_candidate_beats_the_style():
    ms = _make_styles()
    bundled = ["b0", "b1", "b2"]
    final = [("c1", "C1"), ("bundled-1", "b1"), ("c2", "C2"), ("bundled-0", "b0"), ("bundled-2", "b2")]
    score = {"c1": 0.02, "bundled-1": 0.03, "c2": 0.04, "bundled-0": 0.05, "bundled-2": 0.035}
    assert ms.choose_styles(final, score, bundled, 2, None) == ["C1", "b1"]
    assert ms.choose_styles(final, score, bundled, 3, [0]) == ["C1", "b1", "b2"]
    # style 2 (0.035) beats the second candidate (0.04): it stays
    assert ms.choose_styles(final, score, bundled, 3, [0, 2]) == ["C1", "b1", "b2"]
    # the weakest first: style 0 (0.05) gets c1 (0.02), then style 1 (0.03) keeps its place
    # against c2 (0.04), whatever order they are given in
    assert ms.choose_styles(final, score, bundled, 3, [1, 0]) == ["C1", "b1", "b2"]
    score["c2"] = 0.025
    assert ms.choose_styles(final, score, bundled, 3, [1, 0]) == ["C1", "C2", "b2"]


def test_your_ink_writes_at_the_own_hand_bias_and_a_bundled_style_at_the_default(tmp_path):
    # Without --bias, lines primed with a user's ink (a style file, or the lines a fine-tuned
    # model carries) are drawn at OWN_HAND_BIAS, the bundled styles and --no-style at
    # DEFAULT_BIAS; a bias that is given always wins.
    from dataclasses import replace
    from genseq.hand import api
    from test_hand_slant import _slanted
    from test_strokes_normalise import _jsonl
    assert api.OWN_HAND_BIAS != api.DEFAULT_BIAS
    hm = api.load_hand_model()
    style = api.bundled_styles()[2]
    carried = replace(hm, meta={**hm.meta, "styles": [{"text": style.text, "points": style.points.tolist()}]})
    f = tmp_path / "mine.jsonl"
    _jsonl(f, [_slanted(t, 0.2, seed=i) for i, t in enumerate(["a line to prime with", "and another"])])

    def drawn(model, **kw):
        return api.write_handwriting("Tea at 4", model, api.WriteOptions(seed=5, candidates=1, **kw))[1][0].points

    for model, kw in ((carried, {}), (hm, {"style_file": f})):
        own = drawn(model, **kw)
        np.testing.assert_array_equal(own, drawn(model, bias=api.OWN_HAND_BIAS, **kw))
        at_default = drawn(model, bias=api.DEFAULT_BIAS, **kw)
        assert len(own) != len(at_default) or not np.array_equal(own, at_default)
    np.testing.assert_array_equal(drawn(hm, style=2), drawn(hm, style=2, bias=api.DEFAULT_BIAS))
    np.testing.assert_array_equal(drawn(carried, unprimed=True), drawn(carried, unprimed=True, bias=api.DEFAULT_BIAS))
    np.testing.assert_array_equal(drawn(carried, bias=0.5), drawn(hm, style=2, bias=0.5))
    assert api.style_bias(api.WriteOptions(bias=2.0), api.load_style(hm, api.WriteOptions(style_file=f))) == 2.0
