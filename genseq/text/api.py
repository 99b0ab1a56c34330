"""The Python API of the text half: load a model, sample, evaluate."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import load_model
from ..errors import GenseqError
from .corpus import CorpusFile, Vocab, _read_chunks
from .model import CharRNN, CharRNNConfig
from .sample import TextSampleOptions, generate
from .task import nll_of_stream

DEFAULT_MODEL = "shakespeare.pt"


@dataclass
class TextModel:
    model: CharRNN
    vocab: Vocab
    meta: dict


def load_text_model(path: str | os.PathLike | None = None, device: str = "cpu") -> TextModel:
    """Load a text checkpoint (`None` or "default": the bundled model)."""
    model, ckpt = load_model(path, "text", DEFAULT_MODEL,
                             lambda ck: CharRNN(CharRNNConfig.from_dict(ck["config"])))
    try:
        vocab = Vocab.from_json(ckpt["meta"]["vocab"], ckpt["meta"].get("encoding", "utf-8"))
    except (KeyError, TypeError, ValueError) as err:
        raise GenseqError(f"{path or 'the bundled model'} has no usable vocabulary ({err})") from None
    model.to(device)
    return TextModel(model, vocab, ckpt["meta"])


def sample_text(prime: str = "", model: str | os.PathLike | TextModel | None = None,
                stream: bool = False, **options):
    """Sample text: `genseq.sample_text("ROMEO:", length=200, temperature=0.8, seed=1)`.

    Options are the fields of TextSampleOptions. Returns the generated string
    (prime included), or with stream=True an iterator of pieces.
    """
    tm = model if isinstance(model, TextModel) else load_text_model(model)
    opts = TextSampleOptions(prime=prime, **options)
    pieces = generate(tm.model, tm.vocab, opts)
    return pieces if stream else "".join(pieces)


def eval_text(model: str | os.PathLike | TextModel | None, data: str | os.PathLike, split: str = "val",
              skip_unknown: bool = False) -> dict:
    """Held-out loss of a model on an HDF5 corpus split or a plain text file."""
    tm = model if isinstance(model, TextModel) else load_text_model(model)
    data = Path(data)
    if not data.is_file():
        raise GenseqError(f"no such file: {data}")
    with open(data, "rb") as fh:
        is_h5 = fh.read(8) == b"\x89HDF\r\n\x1a\n"
    if is_h5:
        with CorpusFile(data) as corpus:
            if corpus.vocab != tm.vocab:
                raise GenseqError(f"{data} uses another vocabulary than the model; "
                                  "rebuild it with `genseq data text --vocab` or pass the plain text file")
            tokens = corpus.split(split)[:]
    else:
        parts = [tm.vocab.encode(chunk, skip_unknown=skip_unknown)
                 for chunk in _read_chunks(data, tm.vocab.encoding, "lf")]
        tokens = np.concatenate(parts) if parts else []
    if len(tokens) < 2:
        raise GenseqError(f"{data}: too little text to evaluate")
    with torch.inference_mode():
        total, count = nll_of_stream(tm.model, tokens, next(tm.model.parameters()).device)
    nats = total / count
    return {"nats_per_char": nats, "bpc": nats / math.log(2), "perplexity": math.exp(nats), "chars": count}
