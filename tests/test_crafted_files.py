"""Crafted files and out-of-range options, each built here: HDF5 datasets that
claim more than they store or keep their values in another file, vocabularies
and texts no file should hold, model files with absurd ink targets, damaged
training state, outputs that would replace inputs. Each ends in one
`Error: ...` line and a non-zero exit, or a counted skip, before any large
allocation."""
import json

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from genseq.cli import main
from genseq.hand.model import HandwritingConfig, HandwritingModel
from genseq.checkpoint import save_checkpoint
from genseq.strokes.h5 import Sample, write_strokes
from genseq.strokes.normalise import InkTarget
from genseq.text.corpus import build_corpus
from cli_checks import one_line_error

STROKES = [[[0, 0, 0], [100, 50, 10], [200, 0, 20]], [[300, 0, 30], [400, 80, 40]]]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _line(n=20):
    p = np.zeros((n, 3), np.float32)
    p[1:, :2] = np.random.default_rng(0).normal(size=(n - 1, 2))
    p[-1, 2] = 1
    return p


@pytest.fixture
def strokes(tmp_path):
    path = tmp_path / "s.h5"
    write_strokes(path, {"train": [Sample(f"t{i}", "ab", _line()) for i in range(3)],
                         "val": [Sample("v", "ab", _line())]}, source="s", terms="t", units="u")
    return path


def test_a_stroke_dataset_that_claims_terabytes_is_refused_before_reading(strokes):
    with h5py.File(strokes, "a") as f:
        del f["train/points"], f["train/offsets"]
        f.create_dataset("train/points", shape=(10**11, 3), dtype=np.float32, chunks=(1024, 3))  # never written
        f.create_dataset("train/offsets", data=np.array([0, 10**11], np.int64))
    for args in (("data", "stats", strokes), ("show", strokes, "-o", strokes.parent / "o.svg")):
        one_line_error(run(*args), "/train/points claims 1,200,000,000,000 bytes")


def test_a_stroke_dataset_stored_in_another_file_is_refused(strokes, tmp_path):
    outside = tmp_path / "secret"
    outside.write_bytes(np.zeros((60, 3), np.float32).tobytes())
    with h5py.File(strokes, "a") as f:
        del f["train/points"]
        f.create_dataset("train/points", shape=(60, 3), dtype=np.float32, external=[(str(outside), 0, 720)])
    one_line_error(run("data", "stats", strokes), "external storage")


def test_a_stroke_split_behind_an_external_link_is_refused(strokes, tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(strokes, "r") as src, h5py.File(other, "w") as dst:
        src.copy("train", dst)
    with h5py.File(strokes, "a") as f:
        del f["train"]
        f["train"] = h5py.ExternalLink(str(other), "/train")
    for args in (("data", "stats", strokes), ("show", strokes, "-o", tmp_path / "o.svg")):
        one_line_error(run(*args), "/train links to another file")
    # Refused before the link is followed: one to a file that is not there says the same.
    with h5py.File(strokes, "a") as f:
        del f["train"]
        f["train"] = h5py.ExternalLink(str(tmp_path / "gone.h5"), "/train")
    one_line_error(run("data", "stats", strokes), "/train links to another file")


def test_a_text_corpus_split_that_claims_more_than_it_stores_is_refused(tmp_path):
    src = tmp_path / "t.txt"
    src.write_text("abc abc abc\n" * 50)
    corpus = tmp_path / "c.h5"
    build_corpus([src], corpus)
    with h5py.File(corpus, "a") as f:
        dtype = f["val"].dtype
        del f["val"]
        f.create_dataset("val", shape=(10**11,), dtype=dtype, chunks=(1 << 16,))
    one_line_error(run("data", "stats", corpus), "/val claims")


@pytest.mark.parametrize("vocab, needle", [
    ('"abc"', "list of distinct tokens"),
    ('["a", "a"]', "list of distinct tokens"),
    ('["a", "bc"]', "single characters"),
    ('["\\ud800", "a"]', "single characters that UTF-8 can encode"),
    ("[1e30, 2]", "single characters"),
])
def test_a_text_corpus_vocabulary_is_checked(tmp_path, vocab, needle):
    src = tmp_path / "t.txt"
    src.write_text("ab\n" * 50)
    corpus = tmp_path / "c.h5"
    build_corpus([src], corpus)
    with h5py.File(corpus, "a") as f:
        f.attrs["vocab"] = vocab
    one_line_error(run("data", "stats", corpus), "c.h5", needle)


def test_a_format_attribute_stored_as_an_array_is_not_a_corpus(tmp_path):
    corpus = tmp_path / "c.h5"
    with h5py.File(corpus, "w") as f:
        f.attrs["format"] = np.array(["genseq-text", "x"], dtype=h5py.string_dtype())
    one_line_error(run("data", "stats", corpus), "not a genseq")


def test_jsonl_texts_and_ids_a_stroke_file_cannot_hold_are_counted_skips(tmp_path):
    rows = [{"text": "ab " * 1000, "strokes": STROKES}, {"text": "\ud800abc", "strokes": STROKES},
            {"text": "ab\u0000c", "strokes": STROKES}, {"text": "ok", "strokes": STROKES, "id": "x\u0000y"},
            {"text": "fine", "strokes": STROKES}]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    r = run("data", "jsonl", src, "-o", tmp_path / "o.h5", "--val-frac", 0)
    assert r.exit_code == 0, r.output
    for reason in ("text longer than 2,000 characters", "unpaired surrogate", "text with a control character"):
        assert reason in r.output
    assert "kept 2 lines, skipped 3" in r.output  # an id only names a line: its NUL becomes a space
    with h5py.File(tmp_path / "o.h5") as f:
        assert sorted(i.decode() for i in f["train/ids"][()]) == ["in.jsonl:5", "x y"]


def test_a_file_name_that_is_not_utf8_still_names_its_lines(tmp_path):
    src = tmp_path / "caf\udce9.jsonl"  # a Latin-1 file name on a UTF-8 system, as Python sees it
    src.write_text(json.dumps({"text": "fine", "strokes": STROKES}) + "\n")
    r = run("data", "jsonl", src, "-o", tmp_path / "o.h5", "--val-frac", 0)
    assert r.exit_code == 0 and "kept 1 lines" in r.output, r.output


def test_a_stroke_file_text_of_a_million_characters_is_not_trained_on(strokes):
    from genseq.hand.data import usable
    from genseq.hand.model import HandwritingConfig as C
    from genseq.strokes import StrokeDataset
    with h5py.File(strokes, "a") as f:
        texts = f["train/texts"][()]
        texts[0] = ("ab" * 500_000).encode()
        del f["train/texts"]
        f.create_dataset("train/texts", data=texts, dtype=h5py.string_dtype())
    with StrokeDataset(strokes) as ds:
        assert list(usable(ds.split("train"), C(kind="synthesis", alphabet="ab "), None)) == [1, 2]


def test_a_virtual_dataset_is_refused(strokes, tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.zeros((60, 3), np.float32)
    layout = h5py.VirtualLayout(shape=(60, 3), dtype=np.float32)
    layout[:] = h5py.VirtualSource(str(other), "x", shape=(60, 3))
    with h5py.File(strokes, "a") as f:
        del f["train/points"]
        f.create_virtual_dataset("train/points", layout)
    one_line_error(run("data", "stats", strokes), "virtual dataset")


@pytest.mark.parametrize("ink", [{"points_per_char": 10**400, "width_per_char": 1, "height": 1},
                                 {"points_per_char": 1e9, "width_per_char": 186.0, "height": 102.0},
                                 {"points_per_char": -1, "width_per_char": 1, "height": 1}])
def test_an_absurd_ink_target_in_a_model_file_is_ignored(ink):
    assert InkTarget.from_dict(ink) is None
    assert InkTarget.from_dict({"points_per_char": 11.3, "width_per_char": 186.0, "height": 102.0}) is not None


@pytest.mark.parametrize("args, needle", [
    (("train", "text", "CORPUS", "-o", "RUN", "--lr", "1e308"), "--lr"),
    (("train", "handwriting", "STROKES", "-o", "RUN", "--oversample", "a", "--oversample-factor", "1000000000"),
     "--oversample-factor"),
    (("data", "jsonl", "JSONL", "-o", "OUT", "--raw", "--every", "9223372036854775808"), "--every"),
])
def test_options_beyond_any_use_are_refused_before_work(tmp_path, strokes, args, needle):
    src = tmp_path / "t.txt"
    src.write_text("ab\n" * 50)
    build_corpus([src], tmp_path / "c.h5")
    (tmp_path / "in.jsonl").write_text(json.dumps({"text": "ab", "strokes": STROKES}) + "\n")
    names = {"CORPUS": tmp_path / "c.h5", "STROKES": strokes, "RUN": tmp_path / "run", "JSONL": tmp_path / "in.jsonl",
             "OUT": tmp_path / "o.h5"}
    r = run(*[names.get(a, a) for a in args])
    assert r.exit_code == 2 and needle in r.output and "Traceback" not in r.output, r.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args", [("text", "CORPUS", "--hidden", "99999999999999999999"),
                                  ("handwriting", "STROKES", "--mixtures", "9223372036854775807"),
                                  ("recognizer", "STROKES", "--hidden", "9223372036854775807")])
def test_model_sizes_beyond_a_tensors_count_are_one_line(tmp_path, strokes, args):
    src = tmp_path / "t.txt"
    src.write_text("ab\n" * 50)
    build_corpus([src], tmp_path / "c.h5")
    kind, data, *sizes = args
    data = tmp_path / "c.h5" if data == "CORPUS" else strokes
    one_line_error(run("train", kind, data, "-o", tmp_path / "run", *sizes), "genseq builds at most")
    assert not (tmp_path / "run" / "last.pt").exists()


def test_sampling_at_a_temperature_below_floats_is_greedy_not_a_crash(tmp_path):
    r = run("sample", "-n", 30, "-t", "1e-45", "--seed", 1)
    greedy = run("sample", "-n", 30, "-t", "1e-6", "--seed", 1)
    assert r.exit_code == 0 and greedy.exit_code == 0, r.output
    assert r.output == greedy.output


def _tiny_run(tmp_path, strokes):
    out = tmp_path / "run"
    r = run("train", "handwriting", strokes, "-o", out, "--layers", 1, "--hidden", 8, "--mixtures", 2,
            "--window", 2, "--batch", 2, "--max-steps", 2, "--eval-every", 2)
    assert r.exit_code == 0, r.output
    return out


@pytest.mark.parametrize("damage", ["no optimizer", "step", "moments", "rng"])
def test_resuming_from_a_damaged_training_state_is_one_line(tmp_path, strokes, damage):
    out = _tiny_run(tmp_path, strokes)
    ck = torch.load(out / "last.pt", weights_only=True)
    tr = ck["train"]
    if damage == "no optimizer":
        del tr["optimizer"]
    elif damage == "step":
        tr["step"] = "abc"
    elif damage == "moments":
        state = next(iter(tr["optimizer"]["state"].values()))
        state["exp_avg"] = torch.zeros(3, 3, 3)
    else:
        tr["rng"]["torch"] = torch.zeros(3, dtype=torch.uint8)
    torch.save(ck, out / "last.pt")
    r = run("train", "handwriting", strokes, "-o", out, "--layers", 1, "--hidden", 8, "--mixtures", 2,
            "--window", 2, "--batch", 2, "--max-steps", 4, "--eval-every", 2, "--resume")
    one_line_error(r, "cannot resume", "training state is damaged")


def test_write_refuses_a_page_name_that_is_its_own_input(tmp_path):
    text = tmp_path / "out-2.svg"
    text.write_text("hello there")
    r = run("write", "-f", text, "-o", tmp_path / "out.svg", "-k", 1)
    one_line_error(r, "out-2.svg is the input")
    assert text.read_text() == "hello there"


def test_write_refuses_a_page_that_links_to_its_input(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello there")
    (tmp_path / "out-1.svg").symlink_to(notes)
    one_line_error(run("write", "-f", notes, "-o", tmp_path / "out.svg", "-k", 1), "is the input")
    assert notes.read_text() == "hello there"


def test_data_text_refuses_a_json_vocabulary_over_its_input(tmp_path):
    src = tmp_path / "words.json"
    src.write_text("abc def\n")
    one_line_error(run("data", "text", src, "-o", tmp_path / "words.h5", "--json"), "is also an input")
    assert src.read_text() == "abc def\n" and not (tmp_path / "words.h5").exists()
    (tmp_path / "c2.json").mkdir()
    one_line_error(run("data", "text", src, "-o", tmp_path / "c2.h5", "--json"), "is a folder")
    assert not (tmp_path / "c2.h5").exists()
    one_line_error(run("data", "text", src, "-o", tmp_path / "c3.json", "--json"), "its own JSON vocabulary")


def test_an_unforeseen_exception_is_one_line_and_debug_shows_it(tmp_path, monkeypatch):
    config = HandwritingConfig(kind="synthesis", alphabet="ab ", hidden=8, layers=1, mixtures=2, window=2)
    model = tmp_path / "m.pt"
    save_checkpoint(model, kind="handwriting", config=config.to_dict(), meta={},
                    model_state=HandwritingModel(config).state_dict())
    import genseq.hand.api as api

    def boom(*a, **k):
        raise ZeroDivisionError("a case nobody foresaw")
    monkeypatch.setattr(api, "write_drawing", boom)
    one_line_error(run("write", "ab", "-m", model, "-o", tmp_path / "o.svg"),
                   "unexpected ZeroDivisionError: a case nobody foresaw", "GENSEQ_DEBUG=1")
    monkeypatch.setenv("GENSEQ_DEBUG", "1")
    r = run("write", "ab", "-m", model, "-o", tmp_path / "o.svg")
    assert isinstance(r.exception, ZeroDivisionError)


def test_eval_of_lines_with_non_finite_offsets_is_one_line_not_nan(tmp_path, strokes):
    config = HandwritingConfig(kind="synthesis", alphabet="ab ", hidden=8, layers=1, mixtures=2, window=2)
    model = tmp_path / "m.pt"
    save_checkpoint(model, kind="handwriting", config=config.to_dict(), meta={},
                    model_state=HandwritingModel(config).state_dict())
    assert run("eval", "handwriting", model, strokes, "--split", "val", "--json").exit_code == 0
    with h5py.File(strokes, "a") as f:
        points = f["val/points"][()]
        points[3, 0] = np.nan
        f["val/points"][...] = points
    one_line_error(run("eval", "handwriting", model, strokes, "--split", "val", "--json"), "not a number")


def test_the_studio_names_your_file_not_its_copy_when_it_is_not_text(tmp_path):
    from genseq.errors import GenseqError
    from genseq.studio.session import StudioSession
    with pytest.raises(GenseqError) as err:
        StudioSession().set_mine(b'{"text": "ab", "strokes": [[[0, 0], [1, 1]]]}\n\xff\xfe\x00', "notes.jsonl")
    assert str(err.value).startswith("notes.jsonl: notes.jsonl:2: not UTF-8") and "mine-" not in str(err.value)


def test_write_says_an_argument_that_is_not_utf8_is_not_utf8(tmp_path):
    one_line_error(run("write", "ab\udcff\udcfe", "-o", tmp_path / "o.svg"), "not UTF-8")
