import pytest
import torch

from genseq.errors import GenseqError
from genseq.text.corpus import Vocab
from genseq.text.model import CharRNN, CharRNNConfig
from genseq.text.sample import TextSampleOptions, filter_logits, generate


def _fit(text: str, cell: str = "lstm", steps: int = 150) -> tuple[CharRNN, Vocab]:
    torch.manual_seed(0)
    vocab = Vocab(tuple(sorted(set(text))))
    ids = torch.as_tensor(vocab.encode(text)).view(1, -1)
    model = CharRNN(CharRNNConfig(vocab_size=len(vocab), cell=cell, layers=1, hidden=32))
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(steps):
        logits, _ = model(ids[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, len(vocab)), ids[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, vocab


def test_lstm_overfits_a_short_string_and_argmax_reproduces_it():
    text = "hello world, hello genseq.\n"
    model, vocab = _fit(text)
    out = "".join(generate(model, vocab, TextSampleOptions(prime="h", length=len(text) - 1, argmax=True)))
    assert out == text


def test_gru_and_rnn_cells_train():
    for cell in ("gru", "rnn"):
        model, vocab = _fit("abcabcabcabc", cell=cell, steps=80)
        out = "".join(generate(model, vocab, TextSampleOptions(prime="a", length=6, argmax=True)))
        assert out == "abcabca"


def test_tied_weights_share_storage():
    m = CharRNN(CharRNNConfig(vocab_size=10, hidden=16, tie_weights=True))
    assert m.decoder.weight.data_ptr() == m.embed.weight.data_ptr()


def test_config_round_trips_and_refuses_unknown_keys():
    config = CharRNNConfig(vocab_size=10, cell="gru", layers=2, hidden=16, tie_weights=True)
    assert CharRNNConfig.from_dict(config.to_dict()) == config
    with pytest.raises(GenseqError, match=r"unknown text config keys: \['bogus'\]"):
        CharRNNConfig.from_dict({**config.to_dict(), "bogus": 1})
    with pytest.raises(GenseqError, match="hidden must be a whole number"):
        CharRNNConfig.from_dict({**config.to_dict(), "hidden": 1.5})


def test_sampling_is_deterministic_per_seed_and_stops():
    torch.manual_seed(1)
    vocab = Vocab(tuple("abc \n"))
    model = CharRNN(CharRNNConfig(vocab_size=len(vocab), layers=2, hidden=16))
    a = "".join(generate(model, vocab, TextSampleOptions(length=50, seed=3)))
    b = "".join(generate(model, vocab, TextSampleOptions(length=50, seed=3)))
    c = "".join(generate(model, vocab, TextSampleOptions(length=50, seed=4)))
    assert a == b and a != c and len(a) == 50
    stopped = "".join(generate(model, vocab, TextSampleOptions(length=500, seed=3, stop="a")))
    assert stopped.endswith("a") and stopped.count("a") == 1


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_long_prime_runs_in_pieces_to_the_same_state(monkeypatch, cell):
    import genseq.text.sample as sample
    torch.manual_seed(1)
    vocab = Vocab(tuple("abc \n"))
    model = CharRNN(CharRNNConfig(vocab_size=len(vocab), cell=cell, layers=2, hidden=16))
    opts = TextSampleOptions(prime="abc ab ca\n" * 30, length=40, seed=5, echo_prime=False, quantize=False)
    whole = "".join(generate(model, vocab, opts))
    monkeypatch.setattr(sample, "PRIME_CHUNK", 7)  # 300 characters in 43 pieces
    assert "".join(generate(model, vocab, opts)) == whole


def test_top_k_and_top_p_filtering():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    k2 = filter_logits(logits, TextSampleOptions(top_k=2))
    assert torch.isinf(k2[2:]).all() and torch.isfinite(k2[:2]).all()
    p = filter_logits(logits, TextSampleOptions(top_p=0.7))  # 0.5 + 0.3 reaches 0.7
    assert torch.isfinite(p[:2]).all() and torch.isinf(p[2:]).all()
    p1 = filter_logits(logits, TextSampleOptions(top_p=0.1))  # the top token always survives
    assert torch.isfinite(p1[0]) and torch.isinf(p1[1:]).all()
    tiny = filter_logits(logits[[2, 0, 3, 1]], TextSampleOptions(top_p=1e-300))  # rounds to 0 in float32
    assert torch.isfinite(tiny[1]) and torch.isinf(tiny[[0, 2, 3]]).all()
    t = torch.softmax(filter_logits(logits, TextSampleOptions(temperature=0.5)), -1)
    assert t[0] > 0.5


def test_bytes_vocab_sampling_emits_valid_text():
    text = "café ünïcode ".encode("utf-8")
    vocab = Vocab(tuple(sorted(set(text))), encoding="bytes")
    model = CharRNN(CharRNNConfig(vocab_size=len(vocab), layers=1, hidden=8))
    out = "".join(generate(model, vocab, TextSampleOptions(length=40, seed=0)))
    assert isinstance(out, str)


def test_cell_stack_equals_forward_for_every_cell_and_int8_is_close():
    from genseq.text.model import CellStack
    from genseq.text.sample import _stepper
    torch.manual_seed(0)
    for cell in ("lstm", "gru", "rnn"):
        m = CharRNN(CharRNNConfig(vocab_size=7, cell=cell, layers=2, hidden=8)).eval()
        ids = torch.randint(0, 7, (3, 5))
        full, _ = m(ids)
        state = m.initial_state(3)
        q_state = m.initial_state(3)
        quant = _stepper(m, quantize=True)
        for t in range(5):
            logits, state = CellStack(m)(ids[:, t], state)
            assert torch.allclose(logits, full[:, t], atol=1e-6), cell
            q_logits, q_state = quant(ids[:, t], q_state)
            assert torch.allclose(q_logits, full[:, t], atol=0.05), cell
