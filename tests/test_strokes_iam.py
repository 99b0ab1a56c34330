import numpy as np
import pytest
from click.testing import CliRunner

from genseq.cli import main
from genseq.errors import GenseqError
from genseq.strokes import CleanOptions, StrokeDataset
from genseq.strokes.iam import IamOptions, convert_iam, group_of, parse_csr
from genseq.strokes.split import split_of
from strokes_fixtures import LINE, make_iam, stroke_xml, tar_of

BOMB = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        '<WhiteboardCaptureSession><StrokeSet>&lol3;</StrokeSet></WhiteboardCaptureSession>')
EXTERNAL = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY ext SYSTEM "file:///etc/passwd">]>'
            '<WhiteboardCaptureSession><StrokeSet>&ext;</StrokeSet></WhiteboardCaptureSession>')
OPTS = IamOptions(progress=False)


def _line(dx=0):
    return [[(x + dx, y) for x, y in s] for s in LINE]


def _corpus(tmp_path):
    jump = [[(i * 10, 0) for i in range(20)] + [(5000, 0)]]
    forms = {
        "a01-000u": (["first line", "second line"], [_line(), _line(1)]),
        "a01-000x": (["first line", "second line"], [_line(2), _line(3)]),  # same text, other writer
        "a02-010": (["mismatch one"], [_line(), _line()]),  # 1 CSR line, 2 stroke files
        "a03-020": (None, [_line()]),  # no CSR section
        "a04-030": (["ok", "bad jump", "empty strokes", "bomb", "external", "broken", "badpt"],
                    [_line(), jump, [[], []]]),
        "b01-001": (["another group"], [_line(4)]),
        "b02-002": (["the # word", "no#tag here"], [_line(5), _line(6)]),  # "#": a struck-through word
    }
    raw = {"a04-030-04": BOMB, "a04-030-05": EXTERNAL, "a04-030-06": "<StrokeSet><Stroke>",
           "a04-030-07": '<StrokeSet><Stroke><Point x="a" y="1"/></Stroke></StrokeSet>',
           "z09-999-01": stroke_xml(LINE)}  # no transcription
    return make_iam(tmp_path / "db", forms, raw)


def test_parse_csr_blank_lines():
    assert parse_csr(b"OCR:\n\nfoo\n\nCSR:\n\nA b\n\n  c d \n\n") == ["A b", "c d"]
    assert parse_csr(b"OCR:\nfoo\n") is None
    assert group_of("a01-000u") == "a01-000" and group_of("a01-000") == "a01-000"


def test_convert_pairs_and_skips(tmp_path):
    ls, asc = _corpus(tmp_path)
    out = tmp_path / "iam.h5"
    rep = convert_iam(ls, asc, out, OPTS)
    assert rep.kept == 7
    assert dict(rep.skipped) == {"crossed-out word": 1, "count mismatch": 2, "no CSR section": 1, "absurd jump": 1,
                                 "no points": 1, "xml refused (EntitiesForbidden)": 2,
                                 "malformed xml": 1, "bad point": 1, "no transcription": 1}
    with StrokeDataset(out) as ds:
        got = {}
        for name in ("train", "val", "test"):
            sp = ds.split(name)
            for i in range(len(sp)):
                got[sp.ids[i]] = (name, sp[i])
        assert sorted(got) == ["a01-000u-01", "a01-000u-02", "a01-000x-01", "a01-000x-02",
                               "a04-030-01", "b01-001-01", "b02-002-02"]
        assert got["a01-000u-02"][1].text == "second line"  # letter suffix + blank CSR lines
        assert got["a04-030-01"][1].text == "ok"
        p = got["a01-000u-01"][1].points
        # the first stroke goes down on the tablet: negative dy; pen up at stroke ends
        np.testing.assert_array_equal(p[:, 1][:3], [0, -10, -10])
        np.testing.assert_array_equal(p[:, 2], [0, 0, 1, 0, 0, 1])
        assert got["a01-000u-01"][0] == got["a01-000x-02"][0]  # one group, one split
        assert ds.terms.startswith("IAM-OnDB") and ds.resample == "none"
        assert ds.source.endswith("lines with a crossed-out word left out")


def test_tar_equals_folder(tmp_path):
    ls, asc = _corpus(tmp_path)
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    convert_iam(ls, asc, a, OPTS)
    convert_iam(tar_of(ls, tmp_path / "lineStrokes-all.tar.gz"), tar_of(asc, tmp_path / "ascii-all.tar.gz"),
                b, OPTS)
    with StrokeDataset(a) as da, StrokeDataset(b) as db:
        for name in ("train", "val", "test"):
            sa, sb = da.split(name), db.split(name)
            assert sa.ids == sb.ids and sa.texts == sb.texts
            for i in range(len(sa)):
                np.testing.assert_array_equal(sa[i].points, sb[i].points)


def test_splits_by_group_deterministic():
    groups = [f"a{i:02d}-{j:03d}" for i in range(20) for j in range(20)]
    first = [split_of(g, 0.1, 0.1, seed=3) for g in groups]
    assert first == [split_of(g, 0.1, 0.1, seed=3) for g in groups]
    counts = {s: first.count(s) for s in ("train", "val", "test")}
    assert 20 < counts["val"] < 60 and 20 < counts["test"] < 60
    assert first != [split_of(g, 0.1, 0.1, seed=4) for g in groups]
    with pytest.raises(GenseqError):
        split_of("x", 0.6, 0.6)


def test_resample_option_reduces_points(tmp_path):
    long = [[(i * 3, i % 5) for i in range(40)]]
    ls, asc = make_iam(tmp_path / "db", {"a01-000": (["hello"], [long])})
    r1 = convert_iam(ls, asc, tmp_path / "a.h5", OPTS)
    r2 = convert_iam(ls, asc, tmp_path / "b.h5", IamOptions(progress=False, clean=CleanOptions(every=3)))
    assert r2.points < r1.points == 40 and r2.source_points == 40
    assert "every 3" in StrokeDataset(tmp_path / "b.h5").resample


def test_nothing_usable_is_an_error(tmp_path):
    ls, asc = make_iam(tmp_path / "db", {"a01-000": (["x", "y"], [_line()])})
    with pytest.raises(GenseqError, match="no usable lines"):
        convert_iam(ls, asc, tmp_path / "o.h5", OPTS)
    assert not (tmp_path / "o.h5").exists()


def test_cli(tmp_path):
    ls, asc = _corpus(tmp_path)
    out = tmp_path / "o.h5"
    r = CliRunner().invoke(main, ["data", "iam-ondb", str(ls), str(asc), "-o", str(out), "-v", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "kept 7 lines, skipped 11" in r.output and "count mismatch 2" in r.output
    assert "a02-010-01.xml: count mismatch" in r.output and "b02-002-01.xml: crossed-out word" in r.output
    assert "points per character" in r.output
    k = CliRunner().invoke(main, ["data", "iam-ondb", str(ls), str(asc), "-o", str(tmp_path / "k.h5"),
                                  "--keep-crossed-out", "--no-progress"])
    assert k.exit_code == 0 and "kept 8 lines, skipped 10" in k.output, k.output
    with StrokeDataset(tmp_path / "k.h5") as ds:
        assert ds.source == "IAM On-Line Handwriting Database (IAM-OnDB)"
    r = CliRunner().invoke(main, ["data", "stats", str(out)])
    assert r.exit_code == 0 and "train:" in r.output and "alphabet" in r.output and "p95" in r.output
    notarchive = tmp_path / "junk.tar.gz"
    notarchive.write_bytes(b"not a tar at all" * 10)
    for args in ([str(tmp_path / "nope"), str(asc)], [str(notarchive), str(asc)]):
        r = CliRunner().invoke(main, ["data", "iam-ondb", *args, "-o", str(tmp_path / "x.h5")])
        assert r.exit_code == 1 and "Traceback" not in r.output
        assert len(r.output.strip().splitlines()) == 1, r.output
    r = CliRunner().invoke(main, ["data", "stats", str(notarchive)])
    assert r.exit_code == 1 and "not an HDF5" in r.output


def test_a_stroke_file_too_large_to_parse_is_skipped_before_parsing(monkeypatch):
    """A parsed element tree takes about 20 times its file's bytes: a stroke file over
    MAX_STROKE_XML_BYTES (IAM-OnDB's are under 1 MB) is skipped as `too large` unparsed."""
    from genseq.strokes import iam
    from genseq.strokes.clean import Skip
    assert len(iam.parse_stroke_xml(stroke_xml(LINE).encode())) > 0
    big = stroke_xml(LINE).replace("<StrokeSet>", "<StrokeSet>" + " " * iam.MAX_STROKE_XML_BYTES).encode()

    def never(data):
        raise AssertionError("parsed")
    monkeypatch.setattr(iam, "parse_xml", never)
    with pytest.raises(Skip, match="too large"):
        iam.parse_stroke_xml(big)
