"""The prepacked inference matmul (packed.py) and the mixture draw of mdn_sample."""
import pytest
import torch
import torch.nn.functional as F

from genseq.hand import mdn_params, mdn_sample
from genseq.hand.fast.packed import FusedLinear


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("batch", [1, 8, 37])
def test_fused_linear_matches_f_linear_at_any_batch(dtype, batch):
    g = torch.Generator().manual_seed(batch)
    w = (torch.randn(96, 50, generator=g) * 0.1).to(dtype)
    b = torch.randn(96, generator=g).to(dtype)
    x = torch.randn(batch, 50, generator=g).to(dtype)
    lin = FusedLinear(w, b)  # packed for one batch size (BATCH_HINT), called with others
    if dtype == torch.float32:
        assert lin._packed is None  # fp32 stays with F.linear
    got, want = lin(x), F.linear(x, w, b)
    assert got.dtype == dtype and got.shape == (batch, 96)
    # Same inputs in bf16, fp32 accumulation on both sides: at most bf16 rounding apart.
    torch.testing.assert_close(got.float(), want.float(), rtol=1e-2, atol=1e-2)


def test_fused_linear_packs_bf16_on_cpu_where_onednn_is_there():
    w, b = torch.randn(16, 8).bfloat16(), torch.zeros(16).bfloat16()
    assert (FusedLinear(w, b)._packed is not None) == torch.backends.mkldnn.is_available()


def test_fused_weights_run_every_layer_through_fused_linear():
    from genseq.hand import HandwritingConfig, HandwritingModel
    m = HandwritingModel(HandwritingConfig(kind="synthesis", alphabet="ab ", hidden=8, layers=2, mixtures=2, window=2))
    for lin, lstm in zip(m.fused_weights(torch.bfloat16), m.lstms):
        x = torch.randn(3, lin.weight.shape[1])
        want = F.linear(x[:, :-8], lstm.weight_ih_l0, lstm.bias_ih_l0) + F.linear(x[:, -8:], lstm.weight_hh_l0, lstm.bias_hh_l0)
        torch.testing.assert_close(lin(x.bfloat16()).float(), want, rtol=0.05, atol=0.05)


def test_mixture_components_are_drawn_with_their_weights():
    # Four components far apart with tiny σ: which one a point came from is plain
    # from dx, and the counts must follow π (bias 0).
    K, B = 4, 40000
    y = torch.zeros(1, 1 + 6 * K)
    y[0, 1 : 1 + K] = torch.tensor([0.0, 1.0, -1.0, 0.5])  # π̂
    y[0, 1 + K : 1 + 2 * K] = torch.tensor([0.0, 100.0, 200.0, 300.0])  # μ1
    y[0, 1 + 3 * K : 1 + 5 * K] = -5.0  # log σ
    params = mdn_params(y.expand(B, -1), K)
    pts = mdn_sample(params, 0.0, torch.Generator().manual_seed(0))
    counts = torch.bincount(torch.round(pts[:, 0] / 100).long(), minlength=K).float() / B
    torch.testing.assert_close(counts, params.log_pi[0].exp(), atol=0.01, rtol=0)



def test_the_race_draws_what_multinomial_draws_and_works_under_autograd():
    # The docs say the draws did not change: with the same generator, mdn_sample
    # picks the component torch.multinomial picks. Components sit 100 apart with
    # tiny σ, so the one drawn is round(dx / 100).
    K, B = 5, 7
    pi_hat = torch.randn(B, K, generator=torch.Generator().manual_seed(0), requires_grad=True)
    mu1 = 100.0 * torch.arange(K, dtype=torch.float32).expand(B, K)
    y = torch.cat((torch.zeros(B, 1), pi_hat, mu1, torch.zeros(B, K), torch.full((B, 2 * K), -5.0),
                   torch.zeros(B, K)), 1)
    params = mdn_params(y, K)  # requires grad: mdn_sample must not use out= on it
    probs = torch.softmax(params.log_pi.detach(), -1)
    mine, ref = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    for _ in range(50):
        got = torch.round(mdn_sample(params, 0.0, mine)[:, 0] / 100).long()
        want = torch.multinomial(probs, 1, generator=ref).squeeze(1)
        torch.randn(B, 3, generator=ref)  # mdn_sample's noise comes next from the same generator
        assert torch.equal(got, want)
