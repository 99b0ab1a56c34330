"""The fused C++ cell kernels (genseq/hand/_fused.cpp) against the pure-PyTorch loops."""
import os
import shutil

import pytest
import torch

from genseq.hand import fused, recurrent
from test_hand_model import batch, loss_of, tiny

needs_kernels = pytest.mark.skipif(os.environ.get("GENSEQ_NO_FUSED") == "1", reason="GENSEQ_NO_FUSED=1")


@pytest.fixture
def kernels():
    k = fused.kernels()
    if k is None:
        # With a C++ compiler on the machine (as on CI) the build must work.
        assert shutil.which("c++") is None and shutil.which("g++") is None, "the fused kernels did not build"
        pytest.skip("no C++ compiler: the pure-PyTorch loops run instead")
    return k


def _run(model, x, ids, tmask, mask, use_fused, bf16, monkeypatch):
    monkeypatch.setitem(fused._built, "module", fused._built["module"] if use_fused else None)
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        params, state, _ = model(x, ids, tmask, state=model.initial_state(x.shape[0]))
        loss = loss_of(params, x, mask)
    loss.backward()
    return float(loss.detach()), state, {n: p.grad.clone() for n, p in model.named_parameters()}


@needs_kernels
@pytest.mark.parametrize("kind", ["prediction", "synthesis"])
def test_fused_cell_matches_the_pytorch_loops_fp32(kind, kernels, monkeypatch):
    monkeypatch.setattr(recurrent, "BLOCK", 4)  # backward blocks are crossed
    model = tiny(kind, dtype=torch.float32, hidden=8, mixtures=3)
    x, ids, tmask, mask = batch(T=13, dtype=torch.float32)
    la, sa, ga = _run(model, x, ids, tmask, mask, True, False, monkeypatch)
    lb, sb, gb = _run(model, x, ids, tmask, mask, False, False, monkeypatch)
    assert la == pytest.approx(lb, rel=1e-5)
    torch.testing.assert_close(sa.c, sb.c, rtol=1e-5, atol=1e-6)
    for n in ga:
        torch.testing.assert_close(ga[n], gb[n], rtol=1e-4, atol=1e-5, msg=n)


@needs_kernels
def test_fused_cell_bf16_gradients_agree(kernels, monkeypatch):
    # Under bf16 the kernel computes every gate in fp32 where PyTorch's mixed-dtype
    # calls round g and o to bf16 first, so agreement is to bf16 precision.
    model = tiny("synthesis", dtype=torch.float32, hidden=16, mixtures=3)
    x, ids, tmask, mask = batch(T=30, dtype=torch.float32)
    la, _, ga = _run(model, x, ids, tmask, mask, True, True, monkeypatch)
    lb, _, gb = _run(model, x, ids, tmask, mask, False, True, monkeypatch)
    assert la == pytest.approx(lb, rel=1e-2)
    for n in ga:
        cos = torch.nn.functional.cosine_similarity(ga[n].flatten(), gb[n].flatten(), dim=0)
        assert cos > 0.995, (n, float(cos))


@needs_kernels
def test_kernels_refuse_what_they_do_not_cover(kernels):
    H, B = 3, 2
    z, c = torch.zeros(4 * H, B), torch.zeros(H, B)
    a, out = torch.zeros(4 * H, B), torch.zeros(H, B)
    with pytest.raises(RuntimeError, match="contiguous"):
        kernels.cell_forward(z, c.t(), a.clone(), a, out, out.clone())
    with pytest.raises(RuntimeError, match="elements"):
        kernels.cell_forward(z[:-1], c, a.clone(), a, out, out.clone())
    with pytest.raises(RuntimeError, match="float32 or bfloat16"):
        kernels.cell_forward(z.double(), c, a.clone(), a.double(), out.double(), out.double())
    assert not fused.usable(torch.float64, torch.float64, torch.device("cpu"))  # fp64 keeps the PyTorch loops
