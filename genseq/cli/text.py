"""Text commands: `data text`, `train text`, `eval text`, `sample`."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..text.model import CharRNNConfig
from ..text.sample import TextSampleOptions
from .common import SEED, Finite, run_training, train_options, typed_options
from .groups import data, evaluate, main, train

_S = TextSampleOptions()
MAX_PRIME_CHARS = 100_000  # the longest --prime-file read; far more context than a model uses
_C = CharRNNConfig(vocab_size=1)


@data.command("text")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path), help="HDF5 file to write.")
@click.option("--encoding", type=click.Choice(["utf-8", "bytes"]), default="utf-8", show_default=True,
              help="Decode UTF-8 characters, or model raw bytes.")
@click.option("--newlines", type=click.Choice(["lf", "keep"]), default="lf", show_default=True,
              help="lf: turn CRLF and CR into LF; keep: leave line endings as they are.")
@click.option("--val-frac", type=Finite(0, 1, max_open=True), default=0.1, show_default=True,
              help="Fraction kept for validation (taken from the end of the text, before test).")
@click.option("--test-frac", type=Finite(0, 1, max_open=True), default=0.0, show_default=True,
              help="Fraction kept for test (the very end of the text).")
@click.option("--vocab", "vocab_from", default=None,
              help="Reuse the vocabulary of a corpus (.h5) or a model file ('default': the bundled model), "
                   "to fine-tune that model on new text.")
@click.option("--skip-unknown", is_flag=True, help="With --vocab: drop characters outside it instead of failing.")
@click.option("--json", "json_vocab", is_flag=True, help="Also write a torch-rnn style JSON vocabulary beside the file.")
def data_text(files, out, encoding, newlines, val_frac, test_frac, vocab_from, skip_unknown, json_vocab):
    """Build a text corpus (torch-rnn HDF5 layout) from FILES."""
    from ..text.corpus import build_corpus
    if vocab_from is not None and (vocab_from == "default" or not str(vocab_from).endswith((".h5", ".hdf5"))):
        from ..text.api import load_text_model
        vocab_from = load_text_model(vocab_from).vocab
    s = build_corpus(files, out, encoding=encoding, newlines=newlines, val_frac=val_frac, test_frac=test_frac,
                     vocab_from=vocab_from, skip_unknown=skip_unknown, json_vocab=json_vocab, progress=True)
    click.echo(f"wrote {out}: {s['tokens']:,} tokens, vocabulary {s['vocab']}, "
               f"train {s['train']:,} / val {s['val']:,} / test {s['test']:,}", err=True)


@train.command("text")
@click.argument("corpus", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--cell", type=click.Choice(["lstm", "gru", "rnn"]), default=_C.cell, show_default=True, help="Recurrent cell.")
@click.option("--layers", type=click.IntRange(min=1), default=_C.layers, show_default=True, help="Stacked layers.")
@click.option("--hidden", type=click.IntRange(min=1), default=_C.hidden, show_default=True, help="Units per layer.")
@click.option("--embed", type=click.IntRange(min=0), default=_C.embed, show_default=True, help="Embedding size (0: hidden).")
@click.option("--dropout", type=Finite(0, 1, max_open=True), default=_C.dropout, show_default=True, help="Dropout.")
@click.option("--tie-weights", is_flag=True, help="Share the embedding and decoder matrices.")
@click.option("--batch", type=click.IntRange(min=1), default=64, show_default=True, help="Parallel streams per batch (per process under torchrun).")
@click.option("--seq-len", type=click.IntRange(min=1), default=128, show_default=True, help="Characters per TBPTT chunk.")
@train_options
def train_text_cmd(corpus, **kw):
    """Train a character-level language model on CORPUS (from `genseq data text`)."""
    from ..text.train import train_text
    run_training(train_text, corpus, **typed_options(kw))


@evaluate.command("text")
@click.argument("model")
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="val", show_default=True,
              help="Split of an HDF5 corpus.")
@click.option("--skip-unknown", is_flag=True, help="Plain text: drop characters outside the model's vocabulary.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def eval_text_cmd(model, data, split, skip_unknown, as_json):
    """Loss of MODEL (a checkpoint, or 'default') on DATA (HDF5 corpus or text file)."""
    from ..text.api import eval_text
    r = eval_text(model, data, split=split, skip_unknown=skip_unknown)
    if as_json:
        click.echo(json.dumps(r))
    else:
        click.echo(f"{r['nats_per_char']:.4f} nats/char, {r['bpc']:.4f} bits/char, "
                   f"perplexity {r['perplexity']:.3f} over {r['chars']:,} characters")


@main.command("sample")
@click.option("--model", "-m", default=None, help="Checkpoint path (default: the bundled Shakespeare model).")
@click.option("--prime", default="", help="Text to continue.")
@click.option("--prime-file", type=click.File("r", encoding="utf-8"), default=None, help="Read the prime text from a file.")
@click.option("--length", "-n", type=click.IntRange(min=0), default=_S.length, show_default=True, help="Characters to generate.")
@click.option("--temperature", "-t", type=Finite(), default=_S.temperature, show_default=True, help="Sampling temperature (> 0).")
@click.option("--top-k", type=int, default=None, help="Sample among the k most likely characters.")
@click.option("--top-p", type=float, default=None, help="Nucleus sampling: smallest set with probability >= p.")
@click.option("--argmax", is_flag=True, help="Greedy: always the most likely character.")
@click.option("--seed", type=SEED, default=None, help="Random seed (same seed, same text).")
@click.option("--num", type=click.IntRange(min=1), default=1, show_default=True, help="Number of samples.")
@click.option("--stop", default=None, help="Stop a sample once it has produced this string.")
@click.option("--no-echo", is_flag=True, help="Do not print the prime before the sample.")
@click.option("--exact", is_flag=True, help="fp32 weights while sampling (default on a CPU: int8, about 2x faster).")
def sample_cmd(model, prime, prime_file, length, temperature, top_k, top_p, argmax, seed, num, stop, no_echo, exact):
    """Print text from a character model, streaming as it is generated."""
    from ..errors import GenseqError
    from ..text.api import load_text_model
    from ..text.sample import generate
    if prime and prime_file:
        raise GenseqError("give --prime or --prime-file, not both")
    if prime and len(prime) > MAX_PRIME_CHARS:
        raise GenseqError(f"--prime: longer than {MAX_PRIME_CHARS:,} characters; "
                          "a prime is the text to continue, not a corpus")
    if prime_file is not None:
        prime = prime_file.read(MAX_PRIME_CHARS + 1)  # bounded: --prime-file /dev/zero
        if len(prime) > MAX_PRIME_CHARS:
            raise GenseqError(f"--prime-file: longer than {MAX_PRIME_CHARS:,} characters; "
                              "a prime is the text to continue, not a corpus")
    tm = load_text_model(model)
    for i in range(num):
        opts = TextSampleOptions(length=length, prime=prime, temperature=temperature, top_k=top_k, top_p=top_p,
                                 argmax=argmax, seed=None if seed is None else seed + i, stop=stop,
                                 echo_prime=not no_echo, quantize=not exact)
        for piece in generate(tm.model, tm.vocab, opts):
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n" if num == 1 else "\n\n")
