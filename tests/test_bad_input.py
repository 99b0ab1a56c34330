"""The bad-input table of docs/reliability.md, row by row, through the CLI:
each bad input gives one `Error: ...` line and a non-zero exit (or the
documented behaviour), never a traceback."""
import json
import shutil
import time

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from genseq.checkpoint import save_checkpoint
from genseq.cli import main
from genseq.hand.model import HandwritingConfig, HandwritingModel
from genseq.strokes.h5 import Sample, write_strokes
from cli_checks import one_line_error


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def hand_model(path, kind="synthesis"):
    torch.manual_seed(0)
    config = HandwritingConfig(kind=kind, alphabet="abc " if kind == "synthesis" else "", hidden=8, layers=1,
                            mixtures=2, window=2)
    save_checkpoint(path, kind="handwriting", config=config.to_dict(), meta={},
                    model_state=HandwritingModel(config).state_dict())
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)

    def line(n):
        p = np.zeros((n, 3), np.float32)
        p[1:, :2] = rng.normal(size=(n - 1, 2))
        p[n // 2, 2] = p[-1, 2] = 1
        return p

    strokes = d / "s.h5"
    write_strokes(strokes, {"train": [Sample(f"t{i}", "ab ba", line(30)) for i in range(4)],
                            "val": [Sample("v0", "ab", line(20))]}, source="s", terms="t", units="u")
    return {"dir": d, "syn": hand_model(d / "syn.pt"), "pred": hand_model(d / "pred.pt", "prediction"),
            "strokes": strokes}


# -- write -----------------------------------------------------------------------------

@pytest.mark.parametrize("text, needle", [
    ("", "nothing to write"),
    ("   \n\t  ", "nothing to write"),
    ("\x00\x07\x1b\x7f", "nothing to write"),          # control characters are dropped
    ("xyz", "cannot write 3 character(s): 'x' 'y' 'z'"),  # unknown characters are named
])
def test_write_refuses_empty_control_and_unknown_text(files, text, needle):
    one_line_error(run("write", text, "-m", files["syn"], "-o", files["dir"] / "o.svg"), needle)


def test_write_drops_control_characters_and_can_drop_unknown_ones(files):
    out = files["dir"] / "ctl.svg"
    r = run("write", "ab\x00\x07 c\x1bxz", "-m", files["syn"], "-o", out, "--unknown", "drop")
    assert r.exit_code == 0, r.output
    assert out.read_text().startswith("<svg") or "<svg" in out.read_text()


def test_write_refuses_a_megabyte_of_text_at_once(files):
    t0 = time.monotonic()
    r = run("write", "-m", files["syn"], "-o", files["dir"] / "o.svg", input="ab " * 350_000)
    one_line_error(r, "1,050,000 characters", "--max-text")
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("args, needle", [
    (["--bias", "-1"], "--bias"), (["--bias", "nan"], "--bias"), (["--bias", "inf"], "--bias"),
    (["--max-chars", "0"], "--max-chars"),
    (["--seed", str(2**64)], "--seed"), (["--seed", "-1"], "--seed"),
    (["--width", "nan"], "--width': nan is not a finite number"), (["--width", "inf"], "--width"),
    (["--page-width", "inf"], "--page-width"), (["--page-width", "nan"], "--page-width': nan is not a finite"),
    (["--page-width", "2e6"], "--page-width"), (["--page-width", "10"], "--page-width"),
    (["--margin", "nan"], "--margin"), (["--line-height", "inf"], "--line-height"),
    (["--max-text", "0"], "--max-text"),
    (["--char-bias", "x"], "--char-bias 'x': give CHARS=B"), (["--char-bias", "=2"], "give CHARS=B"),
    (["--char-bias", "x=nan"], "give CHARS=B"), (["--char-bias", "x=11"], "--char-bias: the bias"),
    (["--char-bias", "é=2"], "--char-bias: the model cannot write 'é'"),
    (["--style-lines", "2"], "--style-lines works with --style-file"),
])
def test_write_numeric_options_out_of_range(files, args, needle):
    one_line_error(run("write", "ab", "-m", files["syn"], "-o", files["dir"] / "o.svg", *args), needle)


def test_write_with_a_prediction_model_or_a_non_model_file(files):
    one_line_error(run("write", "ab", "-m", files["pred"], "-o", files["dir"] / "o.svg"), "prediction model")
    one_line_error(run("write", "ab", "-m", files["strokes"], "-o", files["dir"] / "o.svg"),
                   "not a genseq model file")
    one_line_error(run("write", "ab", "-m", files["syn"], "-o", files["dir"] / "no" / "o.svg"), "does not exist")


# -- text: data, sample, train ----------------------------------------------------------

@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    from conftest import TEXT
    d = tmp_path_factory.mktemp("text")
    (d / "t.txt").write_text(TEXT, encoding="utf-8")
    assert run("data", "text", d / "t.txt", "-o", d / "c.h5").exit_code == 0
    r = run("train", "text", d / "c.h5", "-o", d / "run", "--layers", 1, "--hidden", 8, "--batch", 2,
            "--seq-len", 8, "--max-steps", 2, "-q")
    assert r.exit_code == 0, r.output
    return d


@pytest.mark.parametrize("args, needle", [
    (["-t", "0"], "temperature"), (["-t", "nan"], "temperature"), (["--top-k", "0"], "--top-k"),
    (["--top-p", "0"], "--top-p"), (["--seed", str(2**64)], "--seed"), (["--length", "-1"], "--length"),
    (["--prime", "\x00\x01"], "U+0000, U+0001"), (["--prime", "\udcff"], "U+DCFF"),
])
def test_sample_bad_options_and_primes(text_run, args, needle):
    one_line_error(run("sample", "-m", text_run / "run" / "best.pt", *args), needle)


def test_data_text_invalid_utf8_control_characters_and_empty(text_run):
    d = text_run
    (d / "bad.txt").write_bytes(b"ab\xff\xfecd")
    one_line_error(run("data", "text", d / "bad.txt", "-o", d / "b.h5"), "not valid UTF-8 near byte 2",
                   "--encoding bytes")
    assert run("data", "text", d / "bad.txt", "-o", d / "b.h5", "--encoding", "bytes").exit_code == 0
    (d / "ctl.txt").write_bytes(b"\x00\x01\x1b[0m\r\n" * 20)  # control characters are ordinary tokens
    assert run("data", "text", d / "ctl.txt", "-o", d / "ctl.h5").exit_code == 0
    (d / "empty.txt").write_bytes(b"")
    one_line_error(run("data", "text", d / "empty.txt", "-o", d / "e.h5"), "no text")
    (d / "folder").mkdir()
    one_line_error(run("data", "text", d / "folder", "-o", d / "e.h5"), "is a folder; give a text file")
    one_line_error(run("data", "text", d / "t.txt", "-o", d / "e.h5", "--val-frac", "0.7", "--test-frac", "0.5"),
                   "split fractions")


def test_data_text_streams_a_big_corpus_in_bounded_memory(tmp_path, monkeypatch):
    # Stands in for the 10 GB corpus: memory is set by the chunk size, not the file size.
    import tracemalloc
    import genseq.text.corpus as corpus
    monkeypatch.setattr(corpus, "CHUNK", 1 << 16)
    big = tmp_path / "big.txt"
    size = 16 << 20
    big.write_bytes((b"the quick brown fox jumps over the lazy dog\n" * (size // 44 + 1))[:size])
    tracemalloc.start()
    s = corpus.build_corpus([big], tmp_path / "big.h5")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert s["tokens"] == size and peak < size / 4, peak


@pytest.mark.parametrize("args, needle", [
    (["--lr", "nan"], "--lr"), (["--lr", "inf"], "--lr"), (["--clip", "nan"], "--clip"),
    (["--weight-decay", "inf"], "--weight-decay"), (["--max-time", "nan"], "--max-time"),
    (["--seed", str(2**64)], "--seed"),
    (["--batch", "100000"], "too short for batch 100000 x 8 steps (it needs 900,000): give a smaller --batch"),
    (["--max-steps", "0"], "--max-steps"), (["--device", "tpu"], "unknown device"),
    (["--device", "cuda:x"], "unknown device"), (["--device", "cuda:-1"], "unknown device"),
    (["--threads", "100000"], "--threads"),
])
def test_train_numeric_options_out_of_range(text_run, args, needle):
    one_line_error(run("train", "text", text_run / "c.h5", "-o", text_run / "new", "--layers", 1, "--hidden", 8,
                       "--batch", 2, "--seq-len", 8, "-q", *args), needle)
    assert not (text_run / "new" / "last.pt").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_train_on_a_numbered_cuda_device_without_cuda(text_run):
    one_line_error(run("train", "text", text_run / "c.h5", "-o", text_run / "new", "--layers", 1, "--hidden", 8,
                       "--batch", 2, "--seq-len", 8, "-q", "--device", "cuda:0"), "--device cuda:0: no CUDA device")


@pytest.mark.parametrize("kind, sizes, needle", [
    ("text", ["--hidden", "100000"], "weights; genseq builds at most 200,000,000"),
    ("text", ["--layers", "100000", "--hidden", "1"], "--layers 100,000 is too many"),
    ("text", ["--embed", "1000000000"], "weights; genseq builds at most"),
])
def test_training_a_model_too_big_to_load_is_refused(text_run, kind, sizes, needle):
    one_line_error(run("train", kind, text_run / "c.h5", "-o", text_run / "big", "--batch", 2, "--seq-len", 8,
                       "--max-steps", 1, "-q", *sizes), needle)
    assert not (text_run / "big" / "last.pt").exists()


def test_resume_with_another_configuration_or_vocabulary_is_refused(text_run):
    d = text_run
    (d / "t2.txt").write_text((d / "t.txt").read_text() + "~{}", encoding="utf-8")
    assert run("data", "text", d / "t2.txt", "-o", d / "c2.h5").exit_code == 0
    common = ["-o", d / "run", "--batch", 2, "--seq-len", 8, "--max-steps", 4, "-q", "--resume"]
    one_line_error(run("train", "text", d / "c2.h5", "--layers", 1, "--hidden", 8, *common),
                   "vocabulary differs", "--init")
    one_line_error(run("train", "text", d / "c.h5", "--layers", 2, "--hidden", 8, *common),
                   "configuration differs", "layers 2 (was 1)", "--init")
    # another corpus of the same vocabulary: the data position would point into other text
    (d / "t3.txt").write_text((d / "t.txt").read_text() * 2, encoding="utf-8")
    assert run("data", "text", d / "t3.txt", "-o", d / "c3.h5", "--vocab", d / "c.h5").exit_code == 0
    one_line_error(run("train", "text", d / "c3.h5", "--layers", 1, "--hidden", 8, *common),
                   "cannot resume", "another corpus")


# -- stroke data ----------------------------------------------------------------------------

BOMB = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        '<ink><annotation type="truth">&lol2;</annotation><trace>1 2, 3 4</trace></ink>')
EXTERNAL = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY ext SYSTEM "file:///etc/passwd">]>'
            '<ink><annotation type="truth">&ext;</annotation><trace>1 2, 3 4</trace></ink>')


def test_inkml_xml_bomb_and_external_entity_are_refused(tmp_path):
    for name, xml in (("bomb", BOMB), ("ext", EXTERNAL)):
        (tmp_path / f"{name}.inkml").write_text(xml)
    r = run("data", "inkml", tmp_path / "bomb.inkml", tmp_path / "ext.inkml", "-o", tmp_path / "k.h5")
    one_line_error(r, "no usable lines", "xml refused")
    assert not (tmp_path / "k.h5").exists()


def test_iam_ondb_on_a_file_that_is_not_an_archive(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    one_line_error(run("data", "iam-ondb", tmp_path / "x.txt", tmp_path / "x.txt", "-o", tmp_path / "i.h5"),
                   "neither a folder nor a tar archive")
    one_line_error(run("data", "iam-ondb", tmp_path / "nope", tmp_path / "x.txt", "-o", tmp_path / "i.h5"),
                   "no such file or folder")


def test_jsonl_nan_huge_and_invalid_points_are_skipped(tmp_path):
    lines = ['{"text": "a", "strokes": [[[0, 0], [NaN, 1]]]}',
             '{"text": "a", "strokes": [[[0, 0], [1e999, 1]]]}',
             '{"text": "a", "strokes": [[[0, 0], [1e300, 1]]]}',
             '{"text": "a", "strokes": [[[0, 0], ["1", 1]]]}',
             '{"text": "ab", "strokes": [[[0, 0], [1, 1], [2, 1]]]}']
    (tmp_path / "a.jsonl").write_text("\n".join(lines) + "\n")
    r = run("data", "jsonl", tmp_path / "a.jsonl", "-o", tmp_path / "j.h5")
    assert r.exit_code == 0, r.output
    assert "kept 1 lines, skipped 4" in r.output and "huge coordinate 1" in r.output
    assert "non-finite coordinate 2" in r.output
    (tmp_path / "b.jsonl").write_bytes(b'{"text": "a"}\n\n{"text": "b"}\n{"text": "\xff"}\n')
    one_line_error(run("data", "jsonl", tmp_path / "b.jsonl", "-o", tmp_path / "j.h5"), "b.jsonl:4: not UTF-8")


def test_ink_too_small_to_size_and_texts_of_several_lines(files, tmp_path):
    """Ink whose coordinates are too small to scale to the model's size (1e-250 of a unit) is
    refused with the reason, not a numpy error; a transcription with a line break inside is
    no line of writing and is skipped, as its ink would be."""
    good = [[[0, 0], [4, 9], [8, 0]], [[10, 5], [14, 9], [18, 5]]]
    tiny = [[[x * 1e-250, y * 1e-250] for x, y in s] for s in good]
    (tmp_path / "tiny.jsonl").write_text(json.dumps({"text": "ab", "strokes": tiny}) + "\n")
    one_line_error(run("data", "jsonl", tmp_path / "tiny.jsonl", "-o", tmp_path / "t.h5"),
                   "cannot normalise the ink (ink too small or too large to size)")
    one_line_error(run("write", "ab", "-k", 1, "--style-file", tmp_path / "tiny.jsonl", "-o", tmp_path / "t.svg"),
                   "ink too small or too large to size")  # the bundled model, which records its ink
    lines = [{"text": "ab\nba", "strokes": good}, {"text": "ab\n", "strokes": good}, {"text": "ba", "strokes": good}]
    (tmp_path / "nl.jsonl").write_text("".join(json.dumps(o) + "\n" for o in lines))
    r = run("data", "jsonl", tmp_path / "nl.jsonl", "-o", tmp_path / "n.h5", "--raw", "--val-frac", "0.5")
    assert r.exit_code == 0, r.output
    assert "kept 2 lines, skipped 1" in r.output and "more than one line of writing 1" in r.output


def _mutate(src, dst, fn):
    shutil.copy(src, dst)
    with h5py.File(dst, "a") as f:
        fn(f)
    return dst


def _retype(f, name, dtype):
    data = f[name][()]
    del f[name]
    f.create_dataset(name, data=data.astype(dtype))


BROKEN = {
    "missing points": (lambda f: f.__delitem__("train/points"), "/train/points is missing or not float32"),
    "missing split": (lambda f: f.__delitem__("val"), "group /val is missing"),
    "points float64": (lambda f: _retype(f, "train/points", np.float64), "/train/points is missing or not float32"),
    "offsets float": (lambda f: _retype(f, "train/offsets", np.float32), "/train/offsets is missing or not int64"),
    "texts numbers": (lambda f: (f["train"].__delitem__("texts"), f["train"].create_dataset("texts", data=np.arange(4))),
                      "/train/texts is missing or not strings"),
    "offsets past the end": (lambda f: f["train/offsets"].__setitem__(1, 10**6), "inconsistent"),
    # unsigned offsets that fall: their differences would wrap round to huge positive numbers
    "offsets unsigned and falling": (lambda f: (f["train"].__delitem__("offsets"), f["train"].create_dataset(
        "offsets", data=np.array([0, 2**63 + 5, 60, 90, 120], np.uint64))), "inconsistent"),
    "version a string": (lambda f: f.attrs.__setitem__("version", "1"), "version"),
    "norm_std nan": (lambda f: f.attrs.__setitem__("norm_std", np.array([np.nan, 1.0])), "norm_std"),
    "norm_std zero": (lambda f: f.attrs.__setitem__("norm_std", np.zeros(2)), "norm_std"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_stroke_files_with_missing_or_mistyped_datasets(files, tmp_path, case):
    fn, needle = BROKEN[case]
    bad = _mutate(files["strokes"], tmp_path / "bad.h5", fn)
    one_line_error(run("show", bad, "-o", tmp_path / "show.svg"), needle)
    one_line_error(run("eval", "handwriting", files["syn"], bad), needle)
    one_line_error(run("train", "handwriting", bad, "-o", tmp_path / "run", "-q", "--hidden", 8, "--layers", 1,
                       "--mixtures", 2, "--window", 2, "--max-steps", 1, "--batch", 2), needle)
    one_line_error(run("data", "stats", bad), needle)


def test_a_stroke_file_with_pen_values_other_than_0_and_1(files, tmp_path):
    """Pen values are read with each line, so the commands that read lines refuse them
    (`data stats` reads only the lengths and texts)."""
    bad = _mutate(files["strokes"], tmp_path / "pen.h5",
                  lambda f: [f[f"{s}/points"].__setitem__(np.s_[:, 2], 7.0) for s in ("train", "val")])
    needle = "pen values other than 0 and 1"
    one_line_error(run("show", bad, "-o", tmp_path / "show.svg"), needle)
    one_line_error(run("eval", "handwriting", files["syn"], bad), needle)
    one_line_error(run("train", "handwriting", bad, "-o", tmp_path / "run", "-q", "--hidden", 8, "--layers", 1,
                       "--mixtures", 2, "--window", 2, "--max-steps", 1, "--batch", 2), needle)


def test_a_text_corpus_where_strokes_are_expected_and_back(files, text_run):
    one_line_error(run("show", text_run / "c.h5"), "not a genseq stroke file")
    one_line_error(run("train", "text", files["strokes"], "-o", text_run / "x", "-q"), "not a genseq text corpus")


def test_an_output_that_is_also_an_input_is_refused(tmp_path):
    """-o naming one of the command's own input files would replace it (the atomic write renames over it)."""
    model = tmp_path / "m.pt"
    hand_model(model)
    text = tmp_path / "note.txt"
    text.write_text("abc cab bca " * 20, encoding="utf-8")
    ink = tmp_path / "mine.jsonl"
    ink.write_text('{"text": "ab", "strokes": [[[0, 0], [1, 1], [2, 0]]]}\n', encoding="utf-8")
    for args, victim in [(["write", "-f", text, "-m", model, "-k", 1, "-o", text], text),
                         (["write", "abc", "-m", model, "--style-file", ink, "-o", ink], ink),
                         (["data", "text", text, "-o", text], text),
                         (["data", "jsonl", ink, "-o", ink], ink)]:
        before = victim.read_bytes()
        one_line_error(run(*args), "is also an input of this command")
        assert victim.read_bytes() == before
    assert run("write", "-f", text, "-m", model, "-k", 1, "-o", tmp_path / "out.svg").exit_code == 0


@pytest.mark.parametrize("name", ["page.jpg", "page.txt", "page"])
def test_an_output_name_of_no_known_format_is_refused(tmp_path, name):
    model = tmp_path / "m.pt"
    hand_model(model)
    one_line_error(run("write", "abc", "-m", model, "-k", 1, "-o", tmp_path / name), "name a .svg, .png or .pdf file")
    assert not (tmp_path / name).exists()


def test_pages_left_from_a_longer_earlier_write_are_named(tmp_path):
    model = tmp_path / "m.pt"
    hand_model(model)
    out = tmp_path / "mp.svg"
    common = ["-m", model, "-k", 1, "--max-chars", 5, "--page-height", 120, "--margin", 5, "-o", out]
    r = run("write", " ".join(["abc"] * 8), *common)
    assert r.exit_code == 0, r.output
    pages = sorted(tmp_path.glob("mp-*.svg"))
    assert len(pages) >= 3 and "warning" not in r.output
    r = run("write", "abc abc", *common)
    assert r.exit_code == 0, r.output
    now = len([line for line in r.output.splitlines() if line.endswith(".svg")])
    assert now < len(pages)
    assert f"warning: mp-{now + 1}.svg to mp-{len(pages)}.svg are left from an earlier" in r.output


def test_iam_ondb_on_a_damaged_archive_and_one_whose_stroke_files_cannot_be_read(tmp_path):
    import gzip
    import tarfile
    strokes = tmp_path / "strokes.tar.gz"
    with tarfile.open(strokes, "w:gz") as tf:
        link = tarfile.TarInfo("ls/a01/a01-000/a01-000u-01.xml")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    ascii_dir = tmp_path / "ascii"
    ascii_dir.mkdir()
    (ascii_dir / "a01-000u.txt").write_text("CSR:\n\nA line\n")
    one_line_error(run("data", "iam-ondb", strokes, ascii_dir, "-o", tmp_path / "i.h5"),
                   "no stroke files", "left out: not a regular file 1")
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(gzip.compress(b"\x00" * 10)[:12])  # a gzip stream cut short
    one_line_error(run("data", "iam-ondb", cut, ascii_dir, "-o", tmp_path / "i.h5"), "damaged archive")
    assert not (tmp_path / "i.h5").exists()
