"""Sampling text from a character model: a pure function of the model and a
`TextSampleOptions`. Streams one decoded piece per generated token."""
from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Iterator

import torch

from ..errors import GenseqError
from .corpus import Vocab
from .model import CellStack, CharRNN


@dataclass(frozen=True)
class TextSampleOptions:
    length: int = 500            # characters to generate (after the prime)
    prime: str = ""              # text the sample continues (echoed first)
    temperature: float = 1.0     # < 1 safer, > 1 more surprising
    top_k: int | None = None     # keep only the k most likely characters
    top_p: float | None = None   # nucleus: smallest set with probability >= p
    argmax: bool = False         # always the most likely character (greedy)
    seed: int | None = None      # same seed, same text
    stop: str | None = None      # end early once this string has been generated
    echo_prime: bool = True
    quantize: bool = True        # CPU: int8 weights while sampling (about 2x faster, same text
                                 # distribution to ~1e-4 nats); False: exact fp32

    def check(self) -> None:
        if self.length < 0:
            raise GenseqError("--length must be >= 0")
        if not self.temperature > 0:
            raise GenseqError("--temperature must be > 0 (use --argmax for greedy sampling)")
        if self.top_k is not None and self.top_k < 1:
            raise GenseqError("--top-k must be >= 1")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise GenseqError("--top-p must be in (0, 1]")
        if self.seed is not None and not 0 <= self.seed < 2**63:
            raise GenseqError("--seed must be between 0 and 2**63 - 1")
        if self.stop == "":
            raise GenseqError("--stop must not be empty")


MIN_TEMPERATURE = 1e-20  # below this, logits / T may overflow float32; sampling there is greedy anyway


def filter_logits(logits: torch.Tensor, opts: TextSampleOptions) -> torch.Tensor:
    """(V,) logits -> (V,) logits with temperature, top-k and top-p applied."""
    logits = logits / max(opts.temperature, MIN_TEMPERATURE)
    if opts.top_k is not None and opts.top_k < logits.numel():
        kth = torch.topk(logits, opts.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if opts.top_p is not None and opts.top_p < 1:
        sorted_logits, order = torch.sort(logits, descending=True)
        cum = torch.softmax(sorted_logits, -1).cumsum(-1)
        drop = cum - torch.softmax(sorted_logits, -1) >= opts.top_p
        drop[0] = False  # the most likely token always stays (a p below float32's range rounds to 0)
        logits = logits.masked_fill(drop.scatter(0, order, drop), float("-inf"))
    return logits


PRIME_CHUNK = 2048  # prime characters run through the network at once


@torch.inference_mode()
def generate(model: CharRNN, vocab: Vocab, opts: TextSampleOptions) -> Iterator[str]:
    """Yield the prime (if echoed) and then one piece of text per new token."""
    opts.check()
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device="cpu")
    if opts.seed is not None:
        gen.manual_seed(opts.seed)
    else:
        gen.seed()  # fresh randomness, without touching the global generator
    if opts.prime:
        ids = vocab.encode(opts.prime)  # unknown characters: GenseqError naming them
        if opts.echo_prime:
            yield opts.prime
    else:
        # No prime: start after a newline, the most neutral context (or token 0).
        nl = "\n" if "\n" in vocab.tokens else (10 if 10 in vocab.tokens else None)
        ids = vocab.encode("\n") if nl is not None else torch.zeros(1, dtype=torch.long).numpy()
    x = torch.as_tensor(ids, dtype=torch.long, device=device).view(1, -1)
    state = None
    for start in range(0, x.shape[1], PRIME_CHUNK):  # a long prime in pieces: bounded memory, the same state
        logits, state = model(x[:, start:start + PRIME_CHUNK], state)
    last = logits[0, -1].float().cpu()
    stepper = _stepper(model, opts.quantize and device.type == "cpu")
    tail = ""
    # Byte models: emit whole UTF-8 characters as they complete.
    decoder = codecs.getincrementaldecoder("utf-8")("replace") if vocab.encoding == "bytes" else None
    for _ in range(opts.length):
        if opts.argmax:
            nxt = int(torch.argmax(last))
        else:
            probs = torch.softmax(filter_logits(last, opts), -1)
            nxt = int(torch.multinomial(probs, 1, generator=gen))
        piece = decoder.decode(bytes([vocab.tokens[nxt]])) if decoder else vocab.tokens[nxt]
        if piece:
            yield piece
        if opts.stop is not None:
            tail = (tail + piece)[-len(opts.stop):]
            if tail == opts.stop:
                return
        logits, state = stepper(torch.tensor([nxt], device=device), state)
        last = logits[0].float().cpu()
    if decoder is not None:
        rest = decoder.decode(b"", final=True)
        if rest:
            yield rest


def _stepper(model: CharRNN, quantize: bool) -> CellStack:
    """One token per call; with `quantize`, dynamic int8 weights (torch.ao)."""
    cells = CellStack(model).eval()
    if not quantize:
        return cells
    import warnings
    with warnings.catch_warnings():  # torch.ao.quantization announces its future move
        warnings.simplefilter("ignore")
        from torch.ao.quantization import quantize_dynamic
        return quantize_dynamic(cells, set(CellStack.CELL.values()) | {torch.nn.Linear}, dtype=torch.qint8)
