"""Character-level recurrent language model (Karpathy's char-rnn; Graves 2013
section 2): embedding, stacked LSTM/GRU/RNN, linear decoder over the vocabulary.
Pure nn.Module: no I/O, no device choice."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..configs import checked_config
from ..errors import GenseqError

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


@dataclass(frozen=True)
class CharRNNConfig:
    vocab_size: int
    cell: str = "lstm"        # lstm | gru | rnn (tanh; the cell the LSTM was invented to fix)
    layers: int = 2
    hidden: int = 512
    embed: int = 0            # 0: same as hidden
    dropout: float = 0.0      # between layers and before the decoder
    tie_weights: bool = False # decoder shares the embedding matrix (needs embed == hidden)

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise GenseqError(f"unknown cell {self.cell!r}; choose one of {', '.join(CELLS)}")
        if self.vocab_size < 1 or self.layers < 1 or self.hidden < 1 or self.embed < 0:
            raise GenseqError("vocab_size, layers and hidden must be positive")
        if not 0 <= self.dropout < 1:
            raise GenseqError("dropout must be in [0, 1)")
        if self.tie_weights and self.embed not in (0, self.hidden):
            raise GenseqError("--tie-weights needs --embed equal to --hidden (or 0)")

    @property
    def embed_size(self) -> int:
        return self.embed or self.hidden

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CharRNNConfig":
        """A config from a model file's dict (configs.checked_config)."""
        return checked_config(cls, d, "text")


class CharRNN(nn.Module):
    def __init__(self, config: CharRNNConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_size)
        rnn_kwargs = {"nonlinearity": "tanh"} if config.cell == "rnn" else {}
        self.rnn = CELLS[config.cell](config.embed_size, config.hidden, config.layers, batch_first=True,
                                   dropout=config.dropout if config.layers > 1 else 0.0, **rnn_kwargs)
        self.drop = nn.Dropout(config.dropout)
        self.decoder = nn.Linear(config.hidden, config.vocab_size)
        if config.tie_weights:
            self.decoder.weight = self.embed.weight  # Press & Wolf 2017

    def forward(self, ids: torch.Tensor, state=None):
        """ids (B, T) long -> logits (B, T, V), state (per layer: (L, B, H) h [and c])."""
        x = self.drop(self.embed(ids))        # (B, T, E)
        h, state = self.rnn(x, state)         # (B, T, H)
        return self.decoder(self.drop(h)), state

    def initial_state(self, batch: int, device=None):
        z = torch.zeros(self.config.layers, batch, self.config.hidden, device=device)
        return (z, z.clone()) if self.config.cell == "lstm" else z


class CellStack(nn.Module):
    """A CharRNN as one cell per layer, one token per call: for sampling.

    The same maths as CharRNN.forward (tested equal) with the same state
    layout, but a whole nn.LSTM call per token costs several times more on a
    CPU, and cells can be quantised (torch.ao dynamic int8: a quarter of the
    weight bytes to read per token, which is what bounds one stream).
    """

    CELL = {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "rnn": nn.RNNCell}

    def __init__(self, model: CharRNN) -> None:
        super().__init__()
        config = self.config = model.config
        self.embed, self.decoder = model.embed, model.decoder
        self.cells = nn.ModuleList()
        for n in range(config.layers):
            cell = self.CELL[config.cell](config.embed_size if n == 0 else config.hidden, config.hidden)
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                setattr(cell, name, getattr(model.rnn, f"{name}_l{n}"))
            self.cells.append(cell)

    def forward(self, ids: torch.Tensor, state):
        """ids (B,) long, state as CharRNN's ((L, B, H) h [, c]) -> logits (B, V), state."""
        x = self.embed(ids)                   # (B, E)
        lstm = self.config.cell == "lstm"
        hs, cs = [], []
        for n, cell in enumerate(self.cells):
            if lstm:
                h, c = cell(x, (state[0][n], state[1][n]))
                cs.append(c)
            else:
                h = cell(x, state[n])
            hs.append(h)
            x = h                             # (B, H); no dropout when sampling
        h = torch.stack(hs)                   # (L, B, H)
        return self.decoder(x), ((h, torch.stack(cs)) if lstm else h)


def detach_state(state):
    """Cut the graph between TBPTT chunks, keeping the values."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()
