import json

import numpy as np
import pytest
from click.testing import CliRunner

from genseq.cli import main
from genseq.errors import GenseqError
from genseq.strokes import StrokeDataset
from genseq.strokes.jsonl import append_jsonl, convert_jsonl, jsonl_line, read_jsonl

GOOD = {"text": "hi", "strokes": [[[0, 0], [0, 10, 0.1], [0, 20, 0.2, 0.5]], [[5, 0], [6, 0]]]}


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_read_jsonl_and_bad_lines(tmp_path):
    lines = [json.dumps(GOOD),
             "{not json",
             json.dumps({"strokes": [[[0, 0]]]}),
             json.dumps({"text": "x"}),
             json.dumps({"text": "x", "strokes": [[[0, "a"]]]}),
             '{"text": "x", "strokes": [[[0, NaN]]]}',
             '{"text": "x", "strokes": [[[0, 1e999]]]}',
             json.dumps({"text": "x", "strokes": [[[0, 1e12]]]}),
             json.dumps({"text": "", "strokes": [[[0, 0]]]}),
             json.dumps({"text": "x", "strokes": [[[0]]]}),
             "",
             json.dumps({**GOOD, "id": "up", "y_up": True})]
    f = _write(tmp_path / "me.jsonl", lines)
    samples = read_jsonl(f)
    assert [s.id for s in samples] == ["me.jsonl:1", "up"]
    np.testing.assert_array_equal(samples[0].points[:, 1], [0, -10, -10, 20, 0])  # y down -> flipped
    np.testing.assert_array_equal(samples[1].points[:, 1], [0, 10, 10, -20, 0])
    np.testing.assert_array_equal(samples[0].points[:, 2], [0, 0, 1, 0, 1])
    out = tmp_path / "o.h5"
    rep = convert_jsonl([f], out)
    assert rep.kept == 2
    assert dict(rep.skipped) == {"invalid JSON": 1, "missing or non-string text": 1,
                                 "missing or non-list strokes": 1, "non-numeric coordinate": 1,
                                 "non-finite coordinate": 2, "huge coordinate": 1, "empty text": 1,
                                 "bad point": 1}
    assert ("me.jsonl:2", "invalid JSON") in rep.details
    with StrokeDataset(out) as ds:
        assert len(ds.split("train")) == 2 and len(ds.split("val")) == 0  # too few for a val split


def test_no_usable_lines(tmp_path):
    f = _write(tmp_path / "bad.jsonl", ["[]", "{}"])
    with pytest.raises(GenseqError, match="no usable"):
        read_jsonl(f)
    r = CliRunner().invoke(main, ["data", "jsonl", str(f), "-o", str(tmp_path / "o.h5")])
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["data", "jsonl", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "o.h5")])
    assert r.exit_code == 1 and "no such file" in r.output


def test_append_and_auto_val(tmp_path):
    f = tmp_path / "cap.jsonl"
    for i in range(30):
        append_jsonl(f, f"text {i}", [[[0, 0], [i + 1, 2]]], id=f"s{i}")
    assert len(read_jsonl(f)) == 30
    with pytest.raises(GenseqError):
        jsonl_line("x", [[[0, float("nan")]]])
    with pytest.raises(GenseqError):
        jsonl_line("", [[[0, 0]]])
    out = tmp_path / "o.h5"
    r = CliRunner().invoke(main, ["data", "jsonl", str(f), "-o", str(out), "--val-frac", "0.3"])
    assert r.exit_code == 0, r.output
    with StrokeDataset(out) as ds:
        n_train, n_val = len(ds.split("train")), len(ds.split("val"))
        assert n_train + n_val == 30 and n_val > 0
        assert not set(ds.split("train").texts) & set(ds.split("val").texts)


def test_a_val_share_always_gets_a_line(tmp_path):
    from genseq.strokes.split import group_fraction
    # 20 texts none of which the 5% share would pick by its hash
    texts = [t for t in (f"line {i}" for i in range(200)) if group_fraction(t) >= 0.05][:20]
    f = tmp_path / "mine.jsonl"
    for i, t in enumerate(texts):
        append_jsonl(f, t, [[[0, 0], [i + 1, 2], [i + 3, 5]]], id=f"s{i}")
    out = tmp_path / "o.h5"
    r = CliRunner().invoke(main, ["data", "jsonl", str(f), "-o", str(out), "--raw"])
    assert r.exit_code == 0, r.output
    nearest = min(texts, key=group_fraction)
    with StrokeDataset(out) as ds:
        assert list(ds.split("val").texts) == [nearest] and len(ds.split("train")) == 19
    r = CliRunner().invoke(main, ["data", "jsonl", str(f), "-o", str(out), "--raw", "--val-frac", "0"])
    assert r.exit_code == 0, r.output
    with StrokeDataset(out) as ds:
        assert len(ds.split("val")) == 0 and len(ds.split("train")) == 20


def test_lf_crlf_and_lone_cr_line_breaks(tmp_path):
    from genseq.strokes.clean import CleanOptions
    from genseq.strokes.jsonl import iter_jsonl
    from genseq.strokes.build import Report
    one = json.dumps(GOOD).encode()
    for sep in (b"\n", b"\r\n", b"\r"):
        f = tmp_path / "s.jsonl"
        f.write_bytes(b"\xef\xbb\xbf" + sep.join([one, one, b"", one]))  # a BOM, a blank line, no final break
        assert len(list(iter_jsonl(f, CleanOptions(), Report()))) == 3, sep
    f.write_bytes(one + b"\n\xff\r" + one + b"\n")  # bad UTF-8 on line 2 (a lone CR ends it)
    with pytest.raises(GenseqError, match="s.jsonl:2: not UTF-8"):
        list(iter_jsonl(f, CleanOptions(), Report()))


def test_whole_strokes_read_as_point_by_point(monkeypatch):
    """A stroke of plain points is converted in one go; it must read exactly as
    the point-by-point check reads it, timed or not, ints or floats."""
    from genseq.strokes import jsonl
    from genseq.strokes.clean import CleanOptions, Skip
    rng = np.random.default_rng(0)
    xy = np.cumsum(rng.normal(0, 3, (60, 2)), 0)
    timed = [[float(x), float(y), 0.01 * i] for i, (x, y) in enumerate(xy)]
    cases = [
        {"text": "ab", "strokes": [timed[:30], timed[30:]]},
        {"text": "ab", "strokes": [[[int(x), int(y)] for x, y in xy[:25]], [[x, y, 1.0, 0.5] for x, y, _ in timed[25:]]]},
        {"text": "ab", "strokes": [timed[:20], [p[:2] for p in timed[20:40]], timed[40:]]},  # one untimed stroke
        {"text": "ab", "strokes": [timed[:20] + [[1.0, 2.0]] + timed[20:]]},  # mixed lengths in a stroke
        {"text": "ab", "strokes": [[], timed], "y_up": True},
        {"text": "ab", "strokes": [timed[:5] + [[1.0, True]]]},
        {"text": "ab", "strokes": [timed[:5] + [[1.0, 10 ** 400]]]},
    ]
    line = '{"text": "ab", "strokes": [[[0, 0, 0], [1, 2, NaN], [3, 4, 0.2]]]}'  # a non-finite t: untimed
    texts = [json.dumps(c) for c in cases] + [line]

    def read(text):
        try:
            sample, n, raw = jsonl._parse_raw(text, "w", CleanOptions())
        except Skip as e:
            return str(e)
        return sample.points, n, raw.strokes, raw.times

    fast = [read(t) for t in texts]
    monkeypatch.setattr(jsonl, "_plain_stroke", lambda stroke: None)
    slow = [read(t) for t in texts]
    assert fast[-3:-1] == slow[-3:-1] == ["non-numeric coordinate", "huge coordinate"]
    for f, s in zip(fast, slow):
        if isinstance(f, str):
            assert f == s
            continue
        np.testing.assert_array_equal(f[0], s[0])
        assert f[1] == s[1]
        for a, b in zip(f[2], s[2]):
            np.testing.assert_array_equal(a, b)
        assert (f[3] is None) == (s[3] is None)
        if f[3] is not None:
            for a, b in zip(f[3], s[3]):
                np.testing.assert_array_equal(a, b)
    assert fast[2][3] is None and fast[-1][3] is None  # an untimed stroke, a non-finite t: untimed lines
    np.testing.assert_array_equal(np.concatenate(fast[0][3]), 0.01 * np.arange(60))
    np.testing.assert_array_equal(np.concatenate(fast[0][2]), xy * [1, -1])  # y down, as given
    assert fast[0][1] == 60 and len(fast[0][0]) == 60  # 60 points read, none repeated to drop


def _word(x0: float, y0: float, letters: int = 4) -> list:
    """A made-up cursive word: one stroke of `letters` loops, 10 units high, 8 wide each."""
    t = np.linspace(0, letters * 2 * np.pi, letters * 12)
    return np.stack([x0 + t / (2 * np.pi) * 8 + 3 * np.sin(t), y0 + 5 - 5 * np.cos(t)], 1).tolist()


def _line(y0: float, words: int = 4, x0: float = 0.0) -> list:
    return [_word(x0 + 45 * k, y0) for k in range(words)]


def test_an_entry_with_a_second_line_of_writing_is_skipped_and_one_line_is_kept(tmp_path):
    """A note of two lines given as one entry (as some tablets' files hold them) primes
    and trains into scribble: it is skipped and counted. Late marks, underlines, a
    flourish, a quote mark or a capital's bars before the words, a letter with a
    descender after a short word: one line."""
    from genseq.strokes.clean import second_line
    y_up = lambda strokes: [np.asarray(s, float) for s in strokes]
    seg = lambda x0, y0, x1, y1, n=20: np.stack([np.linspace(x0, x1, n), np.linspace(y0, y1, n)], 1).tolist()
    one = _line(0)  # four words, x 0 .. 170, letters 10 high
    two = one + _line(-30, words=3)  # back to the left margin, a line lower (y up)
    assert not second_line(y_up(one)) and second_line(y_up(two))
    assert second_line(y_up(two + _line(-60, words=2)))  # three lines
    assert second_line(y_up(one + _line(-30, words=1) + [[[20, -15], [21, -15]]]))  # a lone word and its dot
    assert second_line(y_up(one + [_word(0, -30, letters=8)]))  # the second line one cursive stroke
    assert not second_line(y_up(one + _line(0, words=2, x0=190)))  # more words on the same line
    single = {
        "late t-crosses and a comma": one + [[[2, 8], [12, 8]], [[47, 8], [57, 8]], [[172, -1], [171, -4]]],
        "an underline under two words": one + [seg(0, -4, 35, -4), seg(45, -4, 80, -4)],
        "a double underline": one + [seg(0, -4, 170, -4), seg(0, -7, 170, -7)],
        "an underline, then an i-dot": one + [seg(0, -4, 170, -4), [[20, 14], [20.5, 14]]],
        "cedillas put in late": one + [seg(5, -1, 6, -4, 60), seg(50, -1, 51, -4, 60)],
        "a flourish under a signature": _line(0, words=2) + [seg(-5, -8, 60, -6, 40), seg(60, -6, 100, -10)],
        "a quote mark, then the words": [seg(0, 14, 0, 18, 5), seg(3, 14, 3, 18, 5)] + _line(0, x0=8),
        "an E, then a g": [seg(0, 0, 0, 20, 10), seg(0, 20, 10, 20, 5), seg(0, 10, 8, 10, 5), seg(0, 0, 10, 0, 5),
                           _word(12, 0, letters=1), seg(20, 0, 20, -8, 8)],
    }
    for name, strokes in single.items():
        assert not second_line(y_up(strokes)), name
    lines = [json.dumps({"text": "one line", "strokes": one, "y_up": True}),
             json.dumps({"text": "two lines of it", "strokes": two, "y_up": True}),
             json.dumps({"text": "down the page", "strokes": [[[x, -y] for x, y in s] for s in two]})]  # y down
    f = _write(tmp_path / "notes.jsonl", lines)
    rep = convert_jsonl([f], tmp_path / "o.h5")
    assert rep.kept == 1 and dict(rep.skipped) == {"more than one line of writing": 2}
    assert [s.text for s in read_jsonl(f)] == ["one line"]
    notes = _write(tmp_path / "notes2.jsonl", lines[1:])
    with pytest.raises(GenseqError, match=r"no usable lines \(kept 0 lines, skipped 2: more than one line of writing 2\)"):
        read_jsonl(notes)
