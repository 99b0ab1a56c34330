"""How sure the reader is of each digit and capital: one-character substitutions
of the CTC score (genseq.reader.substitute) and the margin check of `write`."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genseq.errors import GenseqError
from genseq.hand.api import WriteOptions
from genseq.hand.choose import MARGIN_AT, margin_penalty
from genseq.reader.substitute import substitution_scores


def _brute(logp, n, ids, j, v):
    t = ids.copy()
    t[j] = v
    B = len(logp)
    nll = F.ctc_loss(torch.tensor(logp).transpose(0, 1), torch.tensor(t)[None].repeat(B, 1), torch.tensor(n),
                     torch.tensor([len(t)] * B), blank=0, reduction="none")
    return -nll.numpy()


@pytest.mark.parametrize("ids", [[2, 2, 5, 1, 3], [4], [1, 3]])
def test_substitutions_equal_scoring_each_text_anew(ids):
    rng = np.random.default_rng(len(ids))
    B, T, V1 = 3, 19, 7
    logp = torch.log_softmax(torch.tensor(rng.normal(size=(B, T, V1)) * 2), -1).numpy()
    n = np.array([19, 14, 9])  # rows of different lengths, padded
    ids = np.array(ids)
    positions = list(range(len(ids)))
    got = substitution_scores(logp, n, ids, positions)
    assert got.shape == (B, len(ids), V1) and np.isneginf(got[:, :, 0]).all()  # never the blank
    for k, j in enumerate(positions):
        for v in range(1, V1):  # repeats (2, 2) change which paths may skip a blank
            np.testing.assert_allclose(got[:, k, v], _brute(logp, n, ids, j, v), atol=1e-6)


def _reading(text: str, alphabet: str, sure: dict[int, dict[str, float]], frames_per_char: int = 3) -> np.ndarray:
    """Log-probs (T', V+1) of a reader that reads `text` one character per few frames,
    a blank between; at character j it spreads its belief as sure[j] says."""
    V1 = len(alphabet) + 1
    rows = []
    for j, ch in enumerate(text):
        p = np.full(V1, 1e-6)
        for c, q in sure.get(j, {ch: 1.0}).items():
            p[alphabet.index(c) + 1] = q
        rows += [p / p.sum()] * frames_per_char
        blank = np.full(V1, 1e-6)
        blank[0] = 1.0
        rows.append(blank / blank.sum())
    return np.log(np.array(rows))


def test_an_unsure_digit_or_capital_costs_and_a_sure_one_does_not():
    alphabet = " 014OEaty"
    sure = _reading("at 4", alphabet, {})
    unsure = _reading("at 4", alphabet, {3: {"4": 0.5, "y": 0.5}})
    logp = torch.tensor(np.stack([sure, unsure]))
    nf = torch.tensor([len(sure)] * 2)
    pen = margin_penalty(logp, nf, ["at 4", "at 4"], alphabet, nats=1.0)
    assert pen[0] == 0.0 and pen[1] == pytest.approx(-MARGIN_AT, abs=0.05)  # margin about 0: 5 nats short
    assert margin_penalty(logp, nf, ["at 4"] * 2, alphabet, nats=2.0)[1] == pytest.approx(2 * pen[1])
    # only the last word's digits and capitals count: lowercase words cost nothing
    plain = torch.tensor(np.stack([_reading("a ta", alphabet, {3: {"a": 0.5, "y": 0.5}})] * 2))
    assert margin_penalty(plain, torch.tensor([plain.shape[1]] * 2), ["a ta"] * 2, alphabet, 1.0).tolist() == [0, 0]
    # 0 and O (and 1 and l) are written alike: doubt between them costs nothing, doubt with a 4 does
    zero = _reading("a 0", alphabet, {2: {"0": 0.5, "O": 0.5}})
    zero4 = _reading("a 0", alphabet, {2: {"0": 0.5, "4": 0.5}})
    pen = margin_penalty(torch.tensor(np.stack([zero, zero4])), torch.tensor([len(zero)] * 2), ["a 0"] * 2,
                         alphabet, 1.0)
    assert pen[0] == 0.0 and pen[1] < -4
    # a reader that knows no rival of a character (here only "A" of the letters) leaves it unchecked
    lone = torch.tensor(np.stack([_reading("A", " A", {0: {"A": 0.5, " ": 0.5}})]))
    assert margin_penalty(lone, torch.tensor([lone.shape[1]]), ["A"], " A", 1.0).tolist() == [0.0]


def test_margin_check_is_checked():
    with pytest.raises(GenseqError, match="--margin-check"):
        WriteOptions(margin_check=11).check()
    with pytest.raises(GenseqError, match="--margin-check"):
        WriteOptions(margin_check=-1).check()
    WriteOptions(margin_check=0).check()


def test_the_margin_check_is_on_in_the_bundled_styles_and_off_in_your_hand():
    import numpy as np
    from genseq.hand import api
    pts = np.zeros((3, 3), np.float32)
    own, bundled = api.Style(pts, "ab", own=True), api.Style(pts, "ab")
    assert api.style_margin(api.WriteOptions(), own) == 0.0
    assert api.style_margin(api.WriteOptions(), bundled) == api.MARGIN_CHECK == 1.0
    assert api.style_margin(api.WriteOptions(), None) == api.MARGIN_CHECK  # --no-style
    assert api.style_margin(api.WriteOptions(margin_check=2.0), own) == 2.0
    assert api.style_margin(api.WriteOptions(margin_check=0.0), bundled) == 0.0
