"""The window layer's graph path (fixed buffers, blocks copied in and out) against the plain loop.

On the CPU the graphs themselves cannot be recorded, so `capture` is replaced
by a plain call: what is checked here is everything around the graph (loading
weights and state, padded text, whole and partial blocks, copying the blocks
out, buffers reused by the next call). The CUDA test records real graphs.
"""
import pytest
import torch

from genseq.hand import HandState, HandwritingConfig, HandwritingModel, mdn_nll, pad_texts
from genseq.hand.fast import cudagraph, recurrent

ALPHABET = "abc de"


def model_and_batches(dtype, device="cpu", hidden=6):
    torch.manual_seed(0)
    config = HandwritingConfig(kind="synthesis", alphabet=ALPHABET, hidden=hidden, layers=2, mixtures=2, window=2)
    model = HandwritingModel(config).to(dtype).to(device)
    batches = []
    for T, texts in ((10, ["ab d", "ca", "eee"]), (7, ["d", "abcde", "b"])):  # 10 = 4 + 4 + 2: a partial block
        x = torch.randn(3, T, 3, dtype=dtype)
        x[..., 2] = (torch.rand(3, T) < 0.3).to(dtype)
        ids, tmask = pad_texts(texts, ALPHABET)
        batches.append([t.to(device) for t in (x, ids, tmask)])
    return model, batches


def run(model, batches, autocast=False):
    """Loss, phi, final c and every parameter's gradient, batch by batch."""
    out = []
    for x, ids, tmask in batches:
        model.zero_grad()
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
            params, state, extras = model(x, ids, tmask)
            loss = mdn_nll(params, x, torch.ones(x.shape[:2], device=x.device)).sum()
        loss.backward()
        out.append([loss.detach(), extras["phi"].detach(), state.c.detach()]
                   + [p.grad.clone() for p in model.parameters()])
    return out


@pytest.fixture
def fake_graphs(monkeypatch):
    made = []

    def capture(fn, device):
        made.append(fn)
        return fn

    monkeypatch.setattr(recurrent, "BLOCK", 4)
    monkeypatch.setattr(recurrent, "_RUNS", cudagraph.Cache())
    monkeypatch.setattr(cudagraph, "capture", capture)
    return made


def test_graph_path_on_fixed_buffers_matches_the_plain_loop(fake_graphs, monkeypatch):
    model, batches = model_and_batches(torch.float64)
    plain = run(model, batches)
    assert fake_graphs == []
    monkeypatch.setattr(cudagraph, "wanted", lambda device: True)
    fixed = run(model, batches)
    # Both batches pad their text (4 and 5 characters) to 16: one kept run, two recorded loops.
    assert len(fake_graphs) == 2 and len(recurrent._RUNS._items) == 1
    for a, b in zip(plain, fixed):
        for u, v in zip(a, b):
            torch.testing.assert_close(u, v, rtol=1e-12, atol=1e-12)


def test_graph_path_is_checked_by_this_test(fake_graphs, monkeypatch):
    # Mutation check of the comparison above: a block copied out one step late must show.
    model, batches = model_and_batches(torch.float64)
    plain = run(model, batches)
    monkeypatch.setattr(cudagraph, "wanted", lambda device: True)
    real = recurrent._WindowRun.forward_block

    def late(self, k):
        real(self, k)
        self.h[1:k] = self.h[: k - 1].clone()

    monkeypatch.setattr(recurrent._WindowRun, "forward_block", late)
    broken = run(model, batches)
    assert not torch.allclose(plain[0][0], broken[0][0])


def mk(T, texts, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(texts), T, 3, generator=g, dtype=torch.float64)
    x[..., 2] = (torch.rand(len(texts), T, generator=g) < 0.3).to(x.dtype)
    return (x, *pad_texts(texts, ALPHABET))


def scenario(model):
    """Gradients of: state carried with grad (g_cT), non-zero start state, a shorter
    text after a longer one, two forwards before one backward, weights changed between calls."""
    A = mk(10, ["ab d", "ca", "eee"], 1)      # U=4
    L = mk(7, ["ddddd", "abcde", "bb"], 2)    # U=5, same padded key
    g = torch.Generator().manual_seed(9)
    s0 = HandState(*(torch.rand(v.shape, generator=g, dtype=v.dtype).requires_grad_()
                     for v in model.initial_state(3)))
    nll = lambda p, x: mdn_nll(p, x, torch.ones(x.shape[:2], dtype=x.dtype)).sum()  # noqa: E731
    out = []
    model.zero_grad()
    pl, _, _ = model(*L)
    p, s, _ = model(*A, state=s0)
    p2, s2, _ = model(A[0][:, :5], A[1], A[2], state=HandState(s.h, s.c, s.kappa.detach(), s.window.detach()))
    (nll(pl, L[0]) + nll(p, A[0]) + nll(p2, A[0][:, :5]) + (s2.c ** 2).sum()).backward()
    out += [p.grad.clone() for p in model.parameters()] + [v.grad for v in s0]
    with torch.no_grad():
        for q in model.parameters():
            q.add_(0.05 * torch.randn(q.shape, generator=g, dtype=q.dtype))  # as an optimizer step
    model.zero_grad()
    p, _, _ = model(*A)
    nll(p, A[0]).backward()
    return out + [p.grad.clone() for p in model.parameters()]


def test_graph_path_with_state_gradients_shorter_text_and_new_weights(monkeypatch):
    # Also: a real capture runs fn twice first (garbage in the state buffers), and a
    # graph reads the addresses it was recorded with, so no buffer may be rebound.
    monkeypatch.setattr(recurrent, "BLOCK", 4)
    torch.manual_seed(0)
    config = HandwritingConfig(kind="synthesis", alphabet=ALPHABET, hidden=6, layers=2, mixtures=2, window=2)
    plain = scenario(HandwritingModel(config).to(torch.float64))
    torch.manual_seed(0)
    model = HandwritingModel(config).to(torch.float64)
    monkeypatch.setattr(recurrent, "_RUNS", cudagraph.Cache())

    def capture(fn, device):
        fn()
        fn()  # the real capture's warm-up runs leave garbage in the state buffers
        return fn

    monkeypatch.setattr(cudagraph, "capture", capture)
    monkeypatch.setattr(cudagraph, "wanted", lambda device: True)
    # A real graph reads the addresses it was recorded with: no tensor attribute may be rebound.
    init, fwd, back = recurrent._WindowRun.__init__, recurrent._WindowRun.forward_block, recurrent._WindowRun.backward_block

    def ptrs(r):  # every tensor attribute, and every tensor of a tuple attribute (a block's buffers)
        return {(k, i): t.data_ptr() for k, v in vars(r).items()
                for i, t in enumerate(v if isinstance(v, tuple) else (v,)) if torch.is_tensor(t)}

    def init2(self, *a, **k):
        init(self, *a, **k)
        self._ptrs = ptrs(self)

    def checked(real):
        def f(self, k):
            assert ptrs(self) == self._ptrs
            real(self, k)
        return f

    monkeypatch.setattr(recurrent._WindowRun, "__init__", init2)
    monkeypatch.setattr(recurrent._WindowRun, "forward_block", checked(fwd))
    monkeypatch.setattr(recurrent._WindowRun, "backward_block", checked(back))
    fixed = scenario(model)
    for a, b in zip(plain, fixed):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_cache_keeps_the_most_recent():
    c = cudagraph.Cache()
    made = []
    for k in list(range(cudagraph.KEEP + 2)) + [0, cudagraph.KEEP + 1]:
        c.get(k, lambda k=k: made.append(k) or k)
    assert made == list(range(cudagraph.KEEP + 2)) + [0]  # 0 was dropped, KEEP + 1 kept
    assert len(c._items) == cudagraph.KEEP


def test_graphs_only_on_cuda_and_can_be_turned_off(monkeypatch):
    assert not cudagraph.wanted(torch.device("cpu"))
    monkeypatch.setattr(cudagraph, "ENABLED", False)
    assert not cudagraph.wanted(torch.device("cuda"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine: graphs not recorded")
@pytest.mark.parametrize("autocast", [False, True])
def test_cuda_graphs_match_the_step_by_step_loop(autocast, monkeypatch):
    monkeypatch.setattr(recurrent, "_RUNS", cudagraph.Cache())
    model, batches = model_and_batches(torch.float32, "cuda", hidden=32)
    batches = batches + batches[:1]  # the first shape again: its graphs replayed, not recorded
    monkeypatch.setattr(cudagraph, "ENABLED", False)
    plain = run(model, batches, autocast)
    monkeypatch.setattr(cudagraph, "ENABLED", True)
    graphed = run(model, batches, autocast)
    assert len(recurrent._RUNS._items) == 1
    for a, b in zip(plain, graphed):
        for u, v in zip(a, b):
            if autocast:  # same ops; only the padded text's sums may round differently
                cos = torch.nn.functional.cosine_similarity(u.flatten().double(), v.flatten().double(), dim=0)
                assert cos > 0.9999 or torch.equal(u, v)
            else:
                torch.testing.assert_close(u, v)
