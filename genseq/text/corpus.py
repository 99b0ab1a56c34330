"""Text corpora as HDF5, in torch-rnn's layout. One writer, one reader.

Layout (format "genseq-text", version 1):
    /train, /val, /test   1-D token ids, the smallest unsigned dtype that
                          holds the vocabulary, chunked (training reads
                          slices; the file is never loaded whole)
    attrs: format, version, encoding ("utf-8" | "bytes"),
           vocab (JSON list: token i is vocab[i]; a character, or for
           "bytes" an integer 0-255), newlines ("lf" | "keep"), sources

Building streams the input twice (vocabulary and counts, then ids), so
corpora larger than memory work. The split keeps the *end* of the text for
val/test, as char-rnn and nanoGPT do: train = first part, then val, then test.
"""
from __future__ import annotations

import codecs
import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import h5py
import numpy as np

from ..atomic import write_text
from ..atomic_h5 import atomic_h5
from ..errors import H5_ERRORS, GenseqError, first_line
from ..h5safe import check_local, check_stored

FORMAT = "genseq-text"
VERSION = 1
SPLITS = ("train", "val", "test")
CHUNK = 1 << 20  # bytes read at a time


@dataclass(frozen=True)
class Vocab:
    """Token i <-> vocab.tokens[i]; tokens are 1-char strings or byte values."""
    tokens: tuple
    encoding: str = "utf-8"

    def __len__(self) -> int:
        return len(self.tokens)

    @functools.cached_property
    def _lookup(self) -> tuple[np.ndarray, np.ndarray]:  # sorted code points, their token ids
        codes = np.array([t if isinstance(t, int) else ord(t) for t in self.tokens], dtype=np.int64)
        order = np.argsort(codes, kind="stable")
        return codes[order], order

    def encode(self, text: str | bytes, skip_unknown: bool = False) -> np.ndarray:
        """Token ids of `text` (T,). Unknown tokens are a GenseqError naming them."""
        codes = _to_codes(text, self.encoding)
        table, ids = self._lookup
        pos = np.searchsorted(table, codes).clip(0, len(table) - 1)
        known = table[pos] == codes
        idx = ids[pos]
        if not known.all():
            if not skip_unknown:
                bad = sorted(set(codes[~known].tolist()))
                shown = ", ".join(_show(c, self.encoding) for c in bad[:20])
                more = f" and {len(bad) - 20} more" if len(bad) > 20 else ""
                raise GenseqError(f"{len(bad)} character(s) not in the model's vocabulary: {shown}{more}")
            idx = idx[known]
        return idx

    def decode(self, ids: Iterable[int]) -> str:
        if self.encoding == "bytes":
            return bytes(self.tokens[i] for i in ids).decode("utf-8", errors="replace")
        return "".join(self.tokens[i] for i in ids)

    def to_json(self) -> str:
        return json.dumps(list(self.tokens), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str, encoding: str) -> "Vocab":
        """The vocabulary a file stores, checked: distinct byte values 0-255, or
        distinct single characters that UTF-8 can encode; else GenseqError."""
        try:
            tokens = json.loads(text)
        except (ValueError, RecursionError):
            raise GenseqError("the vocabulary is not valid JSON") from None
        if not isinstance(tokens, list) or len(set(map(repr, tokens))) != len(tokens):
            raise GenseqError("the vocabulary must be a list of distinct tokens")
        if encoding == "bytes":
            if not all(type(t) is int and 0 <= t < 256 for t in tokens):
                raise GenseqError("a byte vocabulary must hold byte values 0-255")
        elif not all(isinstance(t, str) and len(t) == 1 and not 0xD800 <= ord(t) < 0xE000 for t in tokens):
            raise GenseqError("a character vocabulary must hold single characters that UTF-8 can encode")
        return cls(tuple(tokens), encoding)


def _show(code: int, encoding: str) -> str:
    if encoding == "bytes":
        return f"byte 0x{code:02x}"
    ch = chr(code)
    return repr(ch) if ch.isprintable() and not ch.isspace() else f"U+{code:04X}"


def _to_codes(text: str | bytes, encoding: str) -> np.ndarray:
    if encoding == "bytes":
        data = text if isinstance(text, bytes) else text.encode("utf-8")
        return np.frombuffer(data, dtype=np.uint8).astype(np.int64)
    return np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32).astype(np.int64)


def _read_chunks(path: Path, encoding: str, newlines: str) -> Iterator[str | bytes]:
    """Stream a file as decoded text (or raw bytes), normalising CRLF/CR to LF."""
    if path.is_dir():
        raise GenseqError(f"{path} is a folder; give a text file (or several)")
    if not path.is_file():
        raise GenseqError(f"no such file: {path}")
    decoder = codecs.getincrementaldecoder("utf-8")("strict") if encoding == "utf-8" else None
    pending_cr = False
    with open(path, "rb") as fh:
        offset = 0
        while True:
            raw = fh.read(CHUNK)
            final = not raw
            if decoder is not None:
                try:
                    chunk = decoder.decode(raw, final=final)
                except UnicodeDecodeError as err:
                    raise GenseqError(f"{path} is not valid UTF-8 near byte {offset + err.start} "
                                      "(`genseq data text --encoding bytes` reads raw bytes)") from None
                cr, lf, crlf = "\r", "\n", "\r\n"
            else:
                chunk, cr, lf, crlf = raw, b"\r", b"\n", b"\r\n"
            offset += len(raw)
            if newlines == "lf":
                if pending_cr:
                    chunk = cr + chunk
                pending_cr = not final and chunk.endswith(cr)
                if pending_cr:
                    chunk = chunk[:-1]  # a CR at the boundary may start a CRLF
                chunk = chunk.replace(crlf, lf).replace(cr, lf)
            if chunk:
                yield chunk
            if final:
                return


def _dtype_for(n: int) -> np.dtype:
    for dt in (np.uint8, np.uint16, np.uint32):
        if n - 1 <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.uint64)


def build_corpus(inputs: list[str | os.PathLike], out: str | os.PathLike, *, encoding: str = "utf-8",
                 newlines: str = "lf", val_frac: float = 0.1, test_frac: float = 0.0,
                 vocab_from: "str | os.PathLike | Vocab | None" = None, skip_unknown: bool = False,
                 json_vocab: bool = False, progress: bool = False) -> dict:
    """Build an HDF5 corpus from text files; returns a summary dict."""
    from tqdm import tqdm

    if encoding not in ("utf-8", "bytes"):
        raise GenseqError(f"unknown encoding {encoding!r} (utf-8 or bytes)")
    if newlines not in ("lf", "keep"):
        raise GenseqError(f"unknown newline mode {newlines!r} (lf or keep)")
    if not (0 <= val_frac < 1 and 0 <= test_frac < 1 and val_frac + test_frac < 1):
        raise GenseqError("split fractions must be in [0, 1) and leave some text for training")
    paths = [Path(p) for p in inputs]
    if not paths:
        raise GenseqError("no input files")
    out = Path(out)
    if json_vocab:  # the second output is checked before the first is written
        side = out.with_suffix(".json")
        if side.is_dir():
            raise GenseqError(f"cannot write the JSON vocabulary {side}: it is a folder")
        if side == out or (out.exists() and side.exists() and os.path.samefile(side, out)):
            raise GenseqError(f"-o {out} would be replaced by its own JSON vocabulary; name the corpus .h5")
        if side.exists() and any(p.exists() and os.path.samefile(side, p) for p in paths):
            raise GenseqError(f"{side} (the JSON vocabulary of {out.name}) is also an input; write to another name")
    total_bytes = sum(p.stat().st_size for p in paths if p.is_file())

    # Pass 1: vocabulary (or a check against a reused one) and token count.
    vocab = None
    if isinstance(vocab_from, Vocab):
        vocab = vocab_from
    elif vocab_from is not None:
        with CorpusFile(vocab_from) as other:
            vocab = other.vocab
    if vocab is not None and vocab.encoding != encoding:
            raise GenseqError(f"{vocab_from} uses encoding {vocab.encoding}, not {encoding}")
    seen = np.zeros(0x110000 if encoding == "utf-8" else 256, dtype=bool)
    count = 0
    with tqdm(total=total_bytes, unit="B", unit_scale=True, desc="scan", disable=not progress) as bar:
        for p in paths:
            for chunk in _read_chunks(p, encoding, newlines):
                if vocab is not None:
                    count += len(vocab.encode(chunk, skip_unknown=skip_unknown))
                else:
                    codes = _to_codes(chunk, encoding)
                    seen[codes] = True
                    count += len(codes)
                bar.update(len(chunk) if encoding == "bytes" else len(chunk.encode("utf-8")))
    if count == 0:
        raise GenseqError("the input holds no text")
    if vocab is None:
        codes = np.flatnonzero(seen)
        tokens = tuple(int(c) for c in codes) if encoding == "bytes" else tuple(chr(c) for c in codes)
        vocab = Vocab(tokens, encoding)

    # Pass 2: ids, written straight into the split datasets.
    # nanoGPT's arithmetic, so the default gives its split to the character.
    n_train, n_test = int(count * (1 - val_frac - test_frac)), int(count * test_frac)
    if n_train < 2:
        raise GenseqError(f"--val-frac {val_frac:g} and --test-frac {test_frac:g} leave {n_train} of the "
                          f"{count:,} characters for training; give smaller ones or more text")
    sizes = {"train": n_train, "val": count - n_train - n_test, "test": n_test}
    dtype = _dtype_for(len(vocab))
    written = 0
    with atomic_h5(out) as f:
        dsets = {s: f.create_dataset(s, shape=(n,), dtype=dtype, chunks=(min(max(n, 1), 1 << 16),) if n else None)
                 for s, n in sizes.items()}
        bounds = np.cumsum([0, sizes["train"], sizes["val"], sizes["test"]])
        with tqdm(total=count, unit="char", unit_scale=True, desc="encode", disable=not progress) as bar:
            for p in paths:
                for chunk in _read_chunks(p, encoding, newlines):
                    ids = vocab.encode(chunk, skip_unknown=skip_unknown).astype(dtype)
                    for i, s in enumerate(SPLITS):
                        lo, hi = max(written, bounds[i]), min(written + len(ids), bounds[i + 1])
                        if lo < hi:
                            dsets[s][lo - bounds[i]:hi - bounds[i]] = ids[lo - written:hi - written]
                    written += len(ids)
                    bar.update(len(ids))
        f.attrs.update({"format": FORMAT, "version": VERSION, "encoding": encoding,
                        "vocab": vocab.to_json(), "newlines": newlines,
                        "sources": json.dumps([p.name for p in paths])})
    if json_vocab:
        idx_to_token = {str(i): t for i, t in enumerate(vocab.tokens)}
        token_to_idx = {str(t): i for i, t in enumerate(vocab.tokens)}
        write_text(out.with_suffix(".json"), json.dumps({"idx_to_token": idx_to_token,
                                                         "token_to_idx": token_to_idx}, ensure_ascii=False))
    return {"tokens": count, "vocab": len(vocab), **{s: int(n) for s, n in sizes.items()}}


class TokenSplit:
    """A split's token ids (1-D), read lazily like the HDF5 dataset it wraps;
    damage inside the stored data (unreadable chunks, ids outside the
    vocabulary) is a GenseqError when a read meets it."""

    def __init__(self, dataset: h5py.Dataset, where: str, vocab_size: int) -> None:
        self._ds, self._where, self._limit = dataset, where, vocab_size

    def __len__(self) -> int:
        return len(self._ds)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._ds.shape

    @property
    def dtype(self) -> np.dtype:
        return self._ds.dtype

    def __getitem__(self, key) -> np.ndarray:
        try:
            ids = self._ds[key]
        except H5_ERRORS as err:  # a flipped byte in a chunk's index: h5py's OSError, among others
            raise GenseqError(f"{self._where}: the token data is damaged ({first_line(err)})") from None
        if np.size(ids) and (np.max(ids) >= self._limit or np.min(ids) < 0):
            bad = int(np.max(ids)) if np.max(ids) >= self._limit else int(np.min(ids))
            raise GenseqError(f"{self._where}: the token data is damaged (id {bad} outside the "
                              f"vocabulary of {self._limit})")
        return ids

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return np.asarray(self[()], dtype=dtype)


class CorpusFile:
    """Read-only access to a genseq text corpus; splits are read by slice."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise GenseqError(f"{self.path}: is a folder, expected a corpus file (.h5)")
        if not self.path.is_file():
            raise GenseqError(f"no such corpus: {self.path}")
        try:
            self.file = h5py.File(self.path, "r")
        except OSError:
            raise GenseqError(f"{self.path} is not an HDF5 file") from None
        try:
            self._read_header()
        except H5_ERRORS as err:  # a damaged file fails inside h5py in many ways
            self.close()
            raise GenseqError(f"{self.path} is damaged: {first_line(err)}") from None
        except BaseException:
            self.close()
            raise

    def _read_header(self) -> None:
        attrs = self.file.attrs
        if not (isinstance(attrs.get("format"), str) and attrs.get("format") == FORMAT):
            raise GenseqError(f"{self.path} is not a genseq text corpus (make one with `genseq data text`)")
        if not _is_version(attrs.get("version")):
            raise GenseqError(f"{self.path}: corpus format version {attrs.get('version')} is not supported")
        try:
            self.vocab = Vocab.from_json(str(attrs["vocab"]), str(attrs["encoding"]))
        except GenseqError as err:
            raise GenseqError(f"{self.path}: {err}") from None
        for s in SPLITS:
            check_local(self.file, s, f"{self.path}: /{s}")
            ds = self.file[s]
            if not isinstance(ds, h5py.Dataset) or ds.ndim != 1 or ds.dtype.kind != "u":
                raise KeyError(s)
            check_stored(ds, f"{self.path}: /{s}", self.file)

    def split(self, name: str) -> "TokenSplit":
        if name not in SPLITS:
            raise GenseqError(f"unknown split {name!r} ({', '.join(SPLITS)})")
        return TokenSplit(self.file[name], f"{self.path} ({name} split)", len(self.vocab))

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "CorpusFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _is_version(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value == VERSION


def is_text_corpus(path: str | os.PathLike) -> bool:
    """Whether `path` is an HDF5 file that says it is a genseq text corpus."""
    try:
        with h5py.File(path, "r") as f:
            value = f.attrs.get("format")
            return isinstance(value, str) and value == FORMAT
    except H5_ERRORS:
        return False


def describe_corpus(path: str | os.PathLike) -> str:
    """Tokens per split, the vocabulary and the encoding of a text corpus, as text."""
    with CorpusFile(path) as c:
        sizes = {s: len(c.split(s)) for s in SPLITS}
        vocab = c.vocab
    total = sum(sizes.values()) or 1
    chars = [chr(t) if isinstance(t, int) else t for t in vocab.tokens]
    visible = [ch.isprintable() and not ch.isspace() and (vocab.encoding != "bytes" or ord(ch) < 127)
               for ch in chars]
    plain = "".join(ch for ch, v in zip(chars, visible) if v)
    other = ", ".join(_show(ord(ch), vocab.encoding) for ch, v in zip(chars, visible) if not v)
    shown = " and ".join(part for part in (plain, other) if part)
    lines = [f"{Path(path).name}: text corpus, {vocab.encoding}, {sum(sizes.values()):,} tokens"]
    lines += [f"  {s:<5} {n:>12,} tokens ({100 * n / total:.1f}%)" for s, n in sizes.items()]
    lines.append(f"  vocabulary: {len(vocab)} tokens: {shown}")
    return "\n".join(lines)

