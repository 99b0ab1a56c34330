"""Property-based fuzzing of everything that reads outside data: the stroke
parsers (JSONL, InkML, IAM XML), the text corpus builder, the stroke HDF5
reader, model files and the renderer's options. The one allowed failure is a
GenseqError (or a parser's Skip, which converters turn into a skipped line);
whatever is accepted must be well-formed. Random offsets through the renderer
are fuzzed in test_render.py."""
import json
import os
import shutil
import string

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genseq.errors import GenseqError
from genseq.strokes.clean import CleanOptions, Skip, clean_strokes
from genseq.strokes.h5 import Sample, StrokeDataset, write_strokes
from genseq.strokes.iam import parse_stroke_xml
from genseq.strokes.inkml import parse_inkml
from genseq.strokes.jsonl import _parse_line, jsonl_line, read_jsonl

# The same examples on every run, so that CI is reproducible; GENSEQ_FUZZ_RANDOM=1
# draws new ones (run it now and then: two real bugs were found that way).
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
                derandomize=os.environ.get("GENSEQ_FUZZ_RANDOM") != "1")


def well_formed(points):
    assert points.dtype == np.float32 and points.ndim == 2 and points.shape[1] == 3 and len(points) >= 1
    assert np.isfinite(points).all()
    assert set(np.unique(points[:, 2])) <= {0.0, 1.0} and points[-1, 2] == 1.0


numbers = st.one_of(st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0, 1, -1, 1e7, 1e300, float("nan")]))
json_values = st.recursive(st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=5)),
                           lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                   st.dictionaries(st.text(max_size=3), inner, max_size=3)),
                           max_leaves=20)
points = st.lists(st.one_of(st.lists(numbers, min_size=0, max_size=5), json_values), max_size=6)
jsonl_objects = st.fixed_dictionaries(
    {"text": st.one_of(st.text(max_size=8), json_values), "strokes": st.one_of(st.lists(points, max_size=4), json_values)},
    optional={"id": st.one_of(st.text(max_size=4), json_values), "y_up": st.one_of(st.booleans(), json_values)})



def _corrupt(src, dst, data, flips: int):
    """A copy of `src` at `dst` with 1..flips random bytes changed and maybe truncated."""
    raw = bytearray(src.read_bytes())
    for _ in range(data.draw(st.integers(1, flips))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    dst.write_bytes(bytes(raw))
    return dst

@FAST
@given(st.one_of(jsonl_objects.map(lambda o: json.dumps(o, allow_nan=True)), st.text(max_size=80)))
def test_jsonl_line_parser(line):
    try:
        sample, n = _parse_line(line, "fuzz:1", CleanOptions())
    except Skip:
        return
    well_formed(sample.points)
    assert isinstance(sample.text, str) and sample.text.strip() and n >= len(sample.points)


@FAST
@given(st.binary(max_size=300))
def test_jsonl_file_of_random_bytes(tmp_path, data):
    path = tmp_path / "f.jsonl"
    path.write_bytes(data)
    try:
        samples = read_jsonl(path)
    except GenseqError:
        return
    for s in samples:
        well_formed(s.points)


@FAST
@given(st.text(max_size=6), st.lists(st.lists(st.lists(numbers, min_size=2, max_size=4), max_size=5), max_size=3))
def test_jsonl_writer_validates_like_the_reader(text, strokes):
    try:
        line = jsonl_line(text, strokes)
    except GenseqError:
        return
    sample, _ = _parse_line(line, "new", CleanOptions())
    well_formed(sample.points)


trace_text = st.lists(st.one_of(st.sampled_from(["0", "1.5", "-3", "1e308", "1e999", "nan", "inf", "'", "!2",
                                                 "*", "#1", ",", " ", "x"]),
                                st.floats().map(repr)), max_size=20).map(" ".join)
channels = st.lists(st.sampled_from(["X", "Y", "T", "F", ""]), max_size=4)
inkml_docs = st.builds(
    lambda ch, orient, truth, traces, grouped: (
        '<ink xmlns="http://www.w3.org/2003/InkML">'
        + (f'<traceFormat>{"".join(f"<channel name={c!r} orientation={orient!r}/>" for c in ch)}</traceFormat>' if ch else "")
        + ("<traceGroup>" if grouped else "")
        + (f'<annotation type="truth">{truth}</annotation>' if truth is not None else "")
        + "".join(f'<trace xml:id="t{i}">{t}</trace>' for i, t in enumerate(traces))
        + ('<traceView traceDataRef="t0"/></traceGroup>' if grouped else "")
        + "</ink>").encode(),
    channels, st.sampled_from(["+ve", "-ve"]), st.one_of(st.none(), st.text(string.ascii_letters + " ", max_size=5)),
    st.lists(trace_text, max_size=4), st.booleans())


@FAST
@given(st.one_of(inkml_docs, st.binary(max_size=200)))
def test_inkml_parser_then_cleaning(data):
    try:
        found = parse_inkml(data, "fuzz")
        for _, text, strokes, y_down in found:
            assert isinstance(text, str)
            try:
                well_formed(clean_strokes(strokes, CleanOptions(), y_down=y_down))
            except Skip:
                pass
    except Skip:
        pass


iam_docs = st.lists(st.lists(st.tuples(st.one_of(numbers.map(str), st.text(max_size=4)),
                                       st.one_of(numbers.map(str), st.text(max_size=4))), max_size=5),
                    max_size=4).map(
    lambda strokes: ("<WhiteboardCaptureSession><StrokeSet>" + "".join(
        "<Stroke>" + "".join(f'<Point x="{x}" y="{y}" time="0"/>' for x, y in s) + "</Stroke>" for s in strokes)
        + "</StrokeSet></WhiteboardCaptureSession>"))


@FAST
@given(st.one_of(iam_docs.map(lambda d: d.encode("utf-8", "surrogatepass")), st.binary(max_size=200)))
def test_iam_stroke_xml_parser_then_cleaning(data):
    try:
        strokes = parse_stroke_xml(data)
        well_formed(clean_strokes(strokes, CleanOptions(every=2, min_dist=0.5), y_down=True))
    except Skip:
        pass


@FAST
@given(st.binary(max_size=400), st.sampled_from(["utf-8", "bytes"]), st.sampled_from(["lf", "keep"]),
       st.floats(0, 0.6))
def test_text_corpus_builder_on_random_bytes(tmp_path, data, encoding, newlines, val_frac):
    from genseq.text.corpus import CorpusFile, build_corpus
    src, out = tmp_path / "in.txt", tmp_path / "out.h5"
    src.write_bytes(data)
    try:
        summary = build_corpus([src], out, encoding=encoding, newlines=newlines, val_frac=val_frac)
    except GenseqError:
        return
    with CorpusFile(out) as c:
        ids = np.concatenate([c.split(s)[()] for s in ("train", "val", "test")])
        text = c.vocab.decode(ids.tolist())
    assert len(ids) == summary["tokens"]
    if encoding == "utf-8":
        expect = data.decode("utf-8")
        if newlines == "lf":
            expect = expect.replace("\r\n", "\n").replace("\r", "\n")
        assert text == expect


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    from genseq.text.corpus import build_corpus
    d = tmp_path_factory.mktemp("corpus")
    (d / "t.txt").write_text("abc abd\nabe\n" * 200, encoding="utf-8")
    build_corpus([d / "t.txt"], d / "c.h5", val_frac=0.2)
    return d / "c.h5"


@FAST
@given(st.data())
def test_text_corpus_reader_on_corrupted_bytes(corpus_file, tmp_path, data):
    from genseq.text.corpus import CorpusFile
    bad = _corrupt(corpus_file, tmp_path / "bad.h5", data, flips=20)
    try:
        c = CorpusFile(bad)
    except GenseqError:
        return
    with c:
        for s in ("train", "val", "test"):
            try:
                ids = c.split(s)[()]
            except GenseqError as err:  # damage inside the token data, met at the read
                assert "damaged" in str(err)
                continue
            assert ids.ndim == 1


@FAST
@given(st.text(max_size=60))
def test_vocabulary_encode_never_crashes(text):
    from genseq.text.corpus import Vocab
    vocab = Vocab(tuple("abc \n"))
    try:
        ids = vocab.encode(text)
    except GenseqError as err:
        assert "not in the model's vocabulary" in str(err)
        return
    assert vocab.decode(ids.tolist()) == text


# -- the stroke HDF5 reader on damaged and mistyped files -------------------------------------

@pytest.fixture(scope="module")
def stroke_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("h5") / "good.h5"

    def line(n):
        p = np.zeros((n, 3), np.float32)
        p[1:, :2] = rng.normal(size=(n - 1, 2))
        p[-1, 2] = 1
        return p

    write_strokes(path, {"train": [Sample(f"t{i}", "ab", line(20 + i)) for i in range(3)],
                         "val": [Sample("v", "ba", line(9))]}, source="s", terms="t", units="u")
    return path


def read_everything(path):
    """What `show`, `eval`, `train` and `data stats` do with a file."""
    from genseq.strokes.stats import stroke_stats
    with StrokeDataset(path) as ds:
        for name in ("train", "val", "test"):
            for s in ds.split(name):
                assert s.points.shape[1] == 3
    stroke_stats(path)


@FAST
@given(st.data())
def test_stroke_reader_on_corrupted_bytes(stroke_file, tmp_path, data):
    bad = _corrupt(stroke_file, tmp_path / "bad.h5", data, flips=20)
    try:
        read_everything(bad)
    except GenseqError:
        pass


replacements = st.one_of(
    st.none(),  # delete it
    st.builds(np.zeros, st.tuples(st.integers(0, 4)), st.sampled_from([np.float32, np.float64, np.int64, np.uint8])),
    st.builds(np.zeros, st.tuples(st.integers(0, 4), st.integers(1, 4)), st.sampled_from([np.float32, np.int32])),
    st.just(np.array([b"x", b"y"])), st.just(np.array([0, 5, 10, 2])), st.just(np.array([0, -1])),
)


@FAST
@given(st.sampled_from(["train", "val", "test"]), st.sampled_from(["points", "offsets", "texts", "ids"]),
       replacements)
def test_stroke_reader_on_mistyped_datasets(stroke_file, tmp_path, split, name, value):
    bad = tmp_path / "bad.h5"
    shutil.copy(stroke_file, bad)
    with h5py.File(bad, "a") as f:
        del f[f"{split}/{name}"]
        if value is not None:
            f[split].create_dataset(name, data=value)
    try:
        read_everything(bad)
    except GenseqError:
        pass


# (h5py cannot store a string attribute with an embedded NUL: such values never reach a reader.)
attr_values = st.one_of(st.none(), st.integers(-3, 3), st.floats(),
                        st.text(max_size=3).filter(lambda t: "\x00" not in t),
                        st.lists(st.floats(), min_size=0, max_size=3).map(np.array))


@FAST
@given(st.sampled_from(["format", "version", "alphabet", "norm_mean", "norm_std", "source", "units"]), attr_values)
def test_stroke_reader_on_odd_attributes(stroke_file, tmp_path, key, value):
    bad = tmp_path / "bad.h5"
    shutil.copy(stroke_file, bad)
    with h5py.File(bad, "a") as f:
        if value is None:
            del f.attrs[key]
        else:
            f.attrs[key] = value
    try:
        with StrokeDataset(bad) as ds:
            assert np.isfinite(ds.norm_std).all() and (ds.norm_std > 0).all()
            assert np.isfinite(ds.norm_mean).all()
    except GenseqError:
        pass


# -- model files -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def text_model_file(tmp_path_factory):
    from genseq.checkpoint import save_checkpoint
    from genseq.text.model import CharRNN, CharRNNConfig
    config = CharRNNConfig(vocab_size=3, layers=1, hidden=4)
    path = tmp_path_factory.mktemp("ck") / "m.pt"
    save_checkpoint(path, kind="text", config=config.to_dict(), meta={"vocab": '["a", "b", "c"]', "encoding": "utf-8"},
                    model_state=CharRNN(config).state_dict())
    return path


@FAST
@given(st.data())
def test_corrupted_model_files(text_model_file, tmp_path, data):
    from genseq.text.api import load_text_model
    bad = _corrupt(text_model_file, tmp_path / "bad.pt", data, flips=8)
    try:
        tm = load_text_model(bad)
    except GenseqError:
        return
    assert len(tm.vocab) == 3


# -- the renderer's options ------------------------------------------------------------------------

odd = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -1.0, 1e-9, 1e9]))


@FAST
@given(st.fixed_dictionaries({}, optional={"width": odd, "height": st.one_of(st.none(), odd), "margin": odd,
                                           "scale": st.one_of(st.none(), odd), "line_height": st.one_of(st.none(), odd),
                                           "stroke_width": odd, "max_text_height": odd, "line_spacing": odd,
                                           "label_size": odd}))
def test_renderer_options(kw):
    from genseq.render import PageOptions, render_pages
    line = np.array([[0, 0, 0], [10, 5, 0], [5, -5, 1]], np.float32)
    try:
        opts = PageOptions(**kw)
    except GenseqError:
        return
    pages = render_pages([line, None, line], opts, labels=["a", "", "b"])
    assert pages
    for doc in pages:
        assert "nan" not in doc and "inf" not in doc
