"""The character model as a training `Task`: truncated BPTT over B parallel
streams of the corpus (torch-rnn/char-rnn style) with the hidden state carried
from one chunk to the next, and exact held-out scores."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..checkpoint import check_new_model
from ..errors import GenseqError
from .corpus import CorpusFile, Vocab
from .model import CharRNN, CharRNNConfig, detach_state


class Streams:
    """B contiguous streams over a 1-D token array, read T+1 tokens at a time.

    Stream b covers tokens [b*L, (b+1)*L) with L = len // B; chunk i of all
    streams is one batch. Only the slices of a batch are read from the file.

    With `world` processes the array holds B*world streams and process `rank`
    reads streams rank*B ... rank*B + B-1, a contiguous shard of the tokens:
    together the processes read exactly what one process with batch B*world
    reads.
    """

    def __init__(self, data, batch: int, steps: int, rank: int = 0, world: int = 1) -> None:
        self.data, self.B, self.T = data, batch, steps
        self.L = len(data) // (batch * world)
        self.first = rank * batch          # global number of this process's first stream
        if self.L < steps + 1:
            procs = f" x {world} processes" if world > 1 else ""
            raise GenseqError(f"split of {len(data):,} tokens is too short for batch {batch}{procs} x {steps} steps "
                              f"(it needs {batch * world * (steps + 1):,}): {_fitting(len(data), batch, steps, world)}")
        self.chunks = (self.L - 1) // steps

    def batch(self, i: int) -> torch.Tensor:
        """Chunk i (mod chunks) -> (B, T+1) long."""
        i %= self.chunks
        starts = [(self.first + b) * self.L + i * self.T for b in range(self.B)]
        rows = [np.asarray(self.data[s: s + self.T + 1]) for s in starts]
        return torch.from_numpy(np.stack(rows).astype(np.int64))


def nll_of_stream(model: CharRNN, tokens, device, batch: int = 16, steps: int = 256) -> tuple[float, int]:
    """Sum of -log p over every predicted token of a 1-D array, in nats, and the
    count. The array is cut into `batch` streams; the hidden state runs across
    chunks so every token after the first of its stream is scored with context."""
    n = len(tokens)
    batch = max(1, min(batch, (n - 1) // 2))
    L = n // batch
    total, count = 0.0, 0
    state = None
    arr = np.asarray(tokens[: L * batch]).astype(np.int64).reshape(batch, L)
    for lo in range(0, L - 1, steps):
        hi = min(lo + steps, L - 1)
        x = torch.from_numpy(arr[:, lo:hi]).to(device)
        y = torch.from_numpy(arr[:, lo + 1:hi + 1]).to(device)
        logits, state = model(x, state)
        total += float(F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum"))
        count += y.numel()
    return total, count


class TextTask:
    kind = "text"
    unit = "chars"

    def __init__(self, corpus: str | Path, config_overrides: dict, *, batch: int = 64, steps: int = 128,
                 eval_chars: int | None = None) -> None:
        self.corpus = CorpusFile(corpus)
        self.vocab: Vocab = self.corpus.vocab
        self.config = CharRNNConfig(vocab_size=len(self.vocab), **config_overrides)
        check_new_model(lambda: CharRNN(self.config), self.config.layers)
        self.model = CharRNN(self.config)
        self.batch, self.steps = batch, steps
        self.streams = Streams(self.corpus.split("train"), batch, steps)
        self.val = self.corpus.split("val")
        if len(self.val) < 2:
            raise GenseqError(f"{corpus} has no validation text; rebuild it with --val-frac > 0")
        self.eval_chars = eval_chars
        self.position = 0
        self.state = None


    def meta(self) -> dict:
        return {"vocab": self.vocab.to_json(), "encoding": self.vocab.encoding,
                "corpus": self.corpus.path.name}

    def compatible(self, ckpt: dict) -> str | None:
        if ckpt["meta"].get("vocab") != self.vocab.to_json():
            return "the corpus vocabulary differs from the checkpoint's"
        now = self.config.to_dict()
        if ckpt["config"] != now:
            differ = [f"{k} {now.get(k)} (was {ckpt['config'].get(k)})" for k in sorted(set(now) | set(ckpt["config"]))
                      if now.get(k) != ckpt["config"].get(k)]
            return f"the model configuration differs from the checkpoint's: {', '.join(differ)}"
        return None

    def train_batch(self, device: torch.device) -> torch.Tensor:
        if self.position % self.streams.chunks == 0:
            self.state = None  # a new epoch starts each stream from its beginning
        chunk = self.streams.batch(self.position)
        self.position += 1
        return chunk.to(device)

    def loss(self, chunk: torch.Tensor) -> tuple[torch.Tensor, int]:
        logits, state = self.model(chunk[:, :-1], self.state)
        self.state = detach_state(state)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), chunk[:, 1:].reshape(-1))
        return loss, chunk[:, 1:].numel()

    def evaluate(self, device: torch.device) -> dict[str, float]:
        data = self.val if self.eval_chars is None else self.val[: self.eval_chars]
        total, count = nll_of_stream(self.model, data, device)
        return {"val_loss": total / count, "val_bpc": total / count / math.log(2)}

    def state_dict(self) -> dict:
        state = None
        if self.state is not None:
            state = [s.cpu() for s in (self.state if isinstance(self.state, tuple) else (self.state,))]
        return {"position": self.position, "hidden": state, "batch": self.batch, "steps": self.steps,
                "tokens": len(self.streams.data)}

    def load_state_dict(self, st: dict) -> None:
        for key, flag, now in (("batch", "--batch", self.batch), ("steps", "--seq-len", self.steps)):
            if st.get(key, now) != now:  # the data position and hidden state depend on both
                raise GenseqError(f"cannot resume: {flag} was {st[key]}, now {now}")
        now = len(self.streams.data)
        if st.get("tokens", now) != now:  # the data position would point into other text
            raise GenseqError(f"cannot resume: the run read a training split of {st['tokens']:,} tokens, this "
                              f"corpus has {now:,} (another corpus)")
        self.position = int(st["position"])
        hidden = st.get("hidden")
        if hidden is None:
            self.state = None
        else:
            device = next(self.model.parameters()).device
            hidden = [h.to(device) for h in hidden]
            self.state = tuple(hidden) if self.config.cell == "lstm" else hidden[0]

    def on_eval(self, out: Path, step: int) -> None:
        pass

    def shard(self, rank: int, world: int) -> None:
        """Data parallelism: this process takes streams rank*B ... of B*world (see Streams)."""
        self.streams = Streams(self.corpus.split("train"), self.batch, self.steps, rank=rank, world=world)
        self.position, self.state = 0, None


def _fitting(n: int, batch: int, steps: int, world: int) -> str:
    """What to give instead when n tokens are too few for batch x steps per process."""
    if n // world < 2:
        return "too few to train on; build the corpus from more text, or with a smaller --val-frac"
    if n // (batch * world) >= 2:
        return f"give a smaller --seq-len, e.g. --seq-len {n // (batch * world) - 1}"
    if n // (world * (steps + 1)) >= 1:
        return f"give a smaller --batch, e.g. --batch {n // (world * (steps + 1))}"
    return f"give a smaller --batch and --seq-len, e.g. --batch 1 --seq-len {n // world - 1}"
