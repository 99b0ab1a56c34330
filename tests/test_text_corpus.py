import json

import h5py
import numpy as np
import pytest

from genseq.errors import GenseqError
from genseq.text.corpus import CorpusFile, build_corpus
from tests.conftest import TEXT


def test_round_trip_and_split_order(corpus):
    with CorpusFile(corpus) as c:
        parts = [c.vocab.decode(c.split(s)[:]) for s in ("train", "val", "test")]
        assert "".join(parts) == TEXT
        n = len(TEXT)
        assert len(parts[0]) == int(n * (1 - 0.1 - 0.05))
        assert len(parts[2]) == int(n * 0.05)
        assert c.split("train").dtype == np.uint8
        assert list(c.vocab.tokens) == sorted(set(TEXT))


def test_torch_rnn_layout_and_json(tmp_path, text_file):
    out = tmp_path / "c.h5"
    build_corpus([text_file], out, json_vocab=True)
    with h5py.File(out) as f:
        assert set(f.keys()) == {"train", "val", "test"}
        assert all(f[k].ndim == 1 for k in f)
    vocab = json.loads((tmp_path / "c.json").read_text(encoding="utf-8"))
    assert vocab["idx_to_token"]["0"] == "\n"
    assert vocab["token_to_idx"][" "] == 1


def test_newlines_normalised_across_chunk_boundary(tmp_path, monkeypatch):
    import genseq.text.corpus as mod
    monkeypatch.setattr(mod, "CHUNK", 3)  # force CRLF pairs to straddle reads
    p = tmp_path / "crlf.txt"
    p.write_bytes(b"ab\r\ncd\r\nef\rg\r\n" * 5)
    out = tmp_path / "c.h5"
    build_corpus([p], out, val_frac=0.0)
    with CorpusFile(out) as c:
        assert c.vocab.decode(c.split("train")[:]) == "ab\ncd\nef\ng\n" * 5
    build_corpus([p], out, val_frac=0.0, newlines="keep")
    with CorpusFile(out) as c:
        assert "\r" in c.vocab.tokens


def test_bytes_encoding_and_invalid_utf8(tmp_path):
    p = tmp_path / "bin.txt"
    p.write_bytes(b"caf\xe9 \xff\xfe" * 10)
    with pytest.raises(GenseqError, match="not valid UTF-8 near byte 3"):
        build_corpus([p], tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()
    build_corpus([p], tmp_path / "b.h5", encoding="bytes", val_frac=0.2)
    with CorpusFile(tmp_path / "b.h5") as c:
        assert 0xFF in c.vocab.tokens and c.vocab.encoding == "bytes"


def test_reuse_vocab_and_unknown(tmp_path, corpus):
    p = tmp_path / "new.txt"
    p.write_text("abc abc\n" * 10 + "Zebra~\n", encoding="utf-8")
    with pytest.raises(GenseqError, match="not in the model's vocabulary: 'Z', '~'"):
        build_corpus([p], tmp_path / "n.h5", vocab_from=corpus)
    build_corpus([p], tmp_path / "n.h5", vocab_from=corpus, skip_unknown=True, val_frac=0.1)
    with CorpusFile(tmp_path / "n.h5") as c, CorpusFile(corpus) as old:
        assert c.vocab == old.vocab
        assert "~" not in "".join(c.vocab.decode(c.split(s)[:]) for s in ("train", "val", "test"))


@pytest.mark.parametrize("content", [b"", b"not hdf5 at all"])
def test_bad_inputs(tmp_path, content):
    p = tmp_path / "f.txt"
    p.write_bytes(content)
    with pytest.raises(GenseqError):
        if content:
            CorpusFile(p)
        else:
            build_corpus([p], tmp_path / "o.h5")
    with pytest.raises(GenseqError, match="no such file"):
        build_corpus([tmp_path / "missing.txt"], tmp_path / "o.h5")


def test_hdf5_that_is_not_a_corpus(tmp_path):
    p = tmp_path / "other.h5"
    with h5py.File(p, "w") as f:
        f["train"] = np.arange(10)
    with pytest.raises(GenseqError, match="not a genseq text corpus"):
        CorpusFile(p)


def test_h5py_failure_reading_the_header_is_a_damaged_file(corpus, monkeypatch):
    # A corrupted root object makes h5py raise KeyError from `file.attrs` itself
    # (found by test_fuzz); any h5py failure while reading the header must be
    # a one-line GenseqError, with the file closed.
    opened = []

    def broken(self):
        opened.append(self.file)
        raise KeyError("Unable to synchronously open object (unable to determine object type)")

    monkeypatch.setattr(CorpusFile, "_read_header", broken)
    with pytest.raises(GenseqError, match="is damaged: .*unable to determine object type"):
        CorpusFile(corpus)
    assert not opened[0].id.valid


def test_damaged_token_data_is_one_clear_error(tmp_path, corpus):
    # Bytes overwritten inside the stored tokens: ids outside the vocabulary used to
    # reach the embedding and end in an IndexError traceback.
    from click.testing import CliRunner
    from genseq.cli import main
    with h5py.File(corpus, "r") as f:
        offset = f["train"].id.get_chunk_info(0).byte_offset
    raw = bytearray(corpus.read_bytes())
    raw[offset:offset + 40] = b"\xff" * 40
    bad = tmp_path / "bad.h5"
    bad.write_bytes(bytes(raw))
    with CorpusFile(bad) as c:
        assert c.split("val")[:].size  # the other splits still read
        with pytest.raises(GenseqError, match=r"train split\): the token data is damaged \(id 255 outside"):
            c.split("train")[:100]
    r = CliRunner().invoke(main, ["train", "text", str(bad), "-o", str(tmp_path / "run"), "--layers", "1",
                                  "--hidden", "8", "--batch", "2", "--seq-len", "16", "--max-steps", "2", "-q"])
    assert r.exit_code == 1 and r.output.strip().splitlines()[-1].startswith("Error: ") and "damaged" in r.output
    assert "Traceback" not in r.output


def test_data_stats_describes_a_text_corpus(corpus):
    from click.testing import CliRunner
    from genseq.cli import main
    r = CliRunner().invoke(main, ["data", "stats", str(corpus)])
    assert r.exit_code == 0, r.output
    with CorpusFile(corpus) as c:
        sizes = {s: len(c.split(s)) for s in ("train", "val", "test")}
        n_vocab = len(c.vocab)
    lines = r.output.splitlines()
    assert lines[0].endswith(f"text corpus, utf-8, {sum(sizes.values()):,} tokens")
    for s, n in sizes.items():
        assert any(ln.split()[:2] == [s, f"{n:,}"] for ln in lines), s
    assert f"vocabulary: {n_vocab} tokens: " in r.output and "U+000A" in r.output  # the newline, by name


def test_splits_that_leave_no_training_text_are_refused(tmp_path):
    src = tmp_path / "t.txt"
    src.write_text("abc abc abc\n" * 10)
    with pytest.raises(GenseqError, match="leave 0 of the 120 characters for training"):
        build_corpus([src], tmp_path / "c.h5", val_frac=0.99999)
    assert not (tmp_path / "c.h5").exists()


def test_a_split_too_short_for_the_batch_says_what_would_fit():
    from genseq.text.task import _fitting
    assert "build the corpus from more text" in _fitting(0, 8, 64, 1)  # no setting helps an empty split
    assert _fitting(100, 2, 64, 1) == "give a smaller --seq-len, e.g. --seq-len 49"  # 2 x 50 tokens
    assert _fitting(100, 64, 8, 1) == "give a smaller --batch, e.g. --batch 11"  # 11 x 9 tokens
    assert _fitting(100, 64, 200, 1) == "give a smaller --batch and --seq-len, e.g. --batch 1 --seq-len 99"
