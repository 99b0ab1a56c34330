"""UNIPEN converter (genseq.strokes.unipen) on tiny synthetic distributions.

Every fixture is written here: a top folder `unipen/` with `data/<category>/<contributor>/<index>`
and `include/<contributor>/...` (a header .doc and ink .dat files), the ink generated as one
letter-like loop per character, 0.2 inch apart."""
import tarfile
from dataclasses import dataclass

import numpy as np
import pytest
from click.testing import CliRunner

from genseq.cli import main
from genseq.errors import GenseqError
from genseq.strokes import StrokeDataset
from genseq.strokes.clean import Skip
from genseq.strokes.unipen import (IAM_POINTS_PER_CHAR, IAM_WIDTH_PER_CHAR, UnipenOptions, convert_unipen,
                                   is_one_line, parse_ink, parse_range, tidy_label, unescape, width_per_char)

SPLITS = ("train", "val", "test")


# -- fixture helpers ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Tablet:
    ppi_x: float = 1000.0
    ppi_y: float = 1000.0
    points: int = 30  # source points per letter stroke
    rate: int = 100

    def doc(self) -> str:
        return (f".VERSION 1.0\n.COORD X Y\n.X_POINTS_PER_INCH {self.ppi_x:g}\n"
                f".Y_POINTS_PER_INCH {self.ppi_y:g}\n.POINTS_PER_SECOND {self.rate}\n")

    def units(self, xy_inches: np.ndarray) -> np.ndarray:
        return np.round(xy_inches * np.array([self.ppi_x, self.ppi_y])).astype(int)


def letter(ch: str, i: float, tab: Tablet, y0: float = 0.0, n: int | None = None) -> np.ndarray:
    """A letter-like loop (n, 2) in tablet units for character `ch` at position i (0.2 inch per character)."""
    n = n or tab.points
    t = np.linspace(0.0, 1.0, n)
    ph = (ord(ch) % 7) * 0.9
    tall = 0.12 if ch in "bdfhklt" else 0.0
    x = i * 0.2 + 0.08 + 0.06 * np.cos(2 * np.pi * 1.2 * t + ph) + 0.02 * t
    y = y0 + 0.07 + 0.06 * np.sin(2 * np.pi * 1.2 * t + ph) + tall * np.sin(np.pi * t)
    return tab.units(np.stack([x, y], 1))


class Ink:
    """An ink .dat file being written; components are numbered as UNIPEN numbers them."""

    def __init__(self, tab: Tablet, writer: str | None = None):
        self.tab, self.out, self.n = tab, [".VERSION 1.0"], 0
        if writer:
            self.writer(writer)

    def writer(self, name: str) -> None:
        self.out.append(f".WRITER_ID {name}")

    def _points(self, pts) -> list[str]:
        sep = "\t" if self.n % 2 else " "  # both separators occur
        return [f"{x}{sep}{y}" for x, y in pts]

    def stroke(self, pts, end: bool = True) -> int:
        """A pen-down component, then a bare .PEN_UP (no component) unless `end` is False."""
        self.out += [".PEN_DOWN", *self._points(pts)] + ([".PEN_UP"] if end else [])
        self.n += 1
        return self.n - 1

    def hover(self, pts) -> int:
        """A .PEN_UP block with points: a numbered component that is not ink."""
        self.out += [".PEN_UP", *self._points(pts)]
        self.n += 1
        return self.n - 1

    def text(self, text: str, y0: float = 0.0) -> tuple[str, list[tuple[str, str]]]:
        """Write `text` one stroke per non-space character: (line range, [(word, word range)])."""
        first, words, cur = None, [], None
        for i, ch in enumerate(text + " "):
            if ch == " ":
                if cur:
                    words.append((text[cur[0]:i], f"{cur[1]}-{cur[2]}"))
                cur = None
                continue
            c = self.stroke(letter(ch, i, self.tab, y0))
            first = c if first is None else first
            cur = (i, c, c) if cur is None else (cur[0], cur[1], c)
        return f"{first}-{self.n - 1}", words

    def dump(self) -> str:
        return "\n".join(self.out) + "\n"


def seg(level: str, rng: str, label: str, quality: str = "?") -> str:
    esc = label.replace("\\", "\\\\").replace('"', '\\"')
    return f'.SEGMENT {level} {rng} {quality} "{esc}"'


def index(includes: list[str], segments: list[str]) -> str:
    return "\n".join([".VERSION 1.0"] + [f".INCLUDE {i}" for i in includes] + segments) + "\n"


def write_tree(top, files: dict[str, str]):
    """files: path under the top folder -> text (written as latin-1, as UNIPEN is)."""
    for rel, text in files.items():
        p = top / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text.encode("latin-1"))
    return top


WRITER_LINES = ("quick brown ink", "lazy dog jumps", "over the fence")


def writers_corpus(top, n_writers: int = 12):
    """n writers over three contributors (two tablets), each with three lines (category 8) and one
    tag word (category 6, its own ink file): writer k's texts all contain the tag 'w' + letter k.
    The last two writers share one ink file (told apart by .WRITER_ID). Writer names and file names
    carry markers the output must not contain."""
    tablets = {"kp": Tablet(), "ga": Tablet(2000, 2000, 60), "uu": Tablet(1000, 500, 40)}
    contribs = list(tablets)
    files = {f"include/{c}/{c}.doc": tab.doc() for c, tab in tablets.items()}
    shared: dict = {}
    for k in range(n_writers):
        c = contribs[k % 3] if k < n_writers - 2 else "kp"
        tab, tag, name = tablets[c], "w" + chr(97 + k), f"SECRETWRITER_{k}_Name"
        if k >= n_writers - 2:  # the last two writers share an ink file
            ink = shared.setdefault("ink", Ink(tab))
            ink.writer(name)
            ink_rel = f"{c}/data/INKFILE_shared.dat"
        else:
            ink, ink_rel = Ink(tab, name), f"{c}/data/INKFILE_{k}.dat"
        segs = []
        for j, line in enumerate(WRITER_LINES):
            text = f"{tag} {line}"
            rng, _ = ink.text(text)  # each line its own segment
            segs.append(seg("TEXT", rng, text))
        files[f"include/{ink_rel}"] = ink.dump()
        files[f"data/8/{c}/IDXFILE_{k}"] = index([f"{c}/{c}.doc", ink_rel], segs)
        words = Ink(tab, name)
        rng, _ = words.text(tag)
        files[f"include/{c}/data/INKWORDS_{k}.dat"] = words.dump()
        files[f"data/6/{c}/IDXWORDS_{k}"] = index([f"{c}/{c}.doc", f"{c}/data/INKWORDS_{k}.dat"],
                                                  [seg("WORD", rng, tag)])
    return write_tree(top, files)


def read_all(path) -> dict[tuple[str, str], tuple[str, str, np.ndarray]]:
    """(id, text) -> (split, text, points) over all splits. Keyed by text too, as ids can repeat
    (see test_ids_unique_across_index_files_of_one_contributor)."""
    out = {}
    with StrokeDataset(path) as ds:
        for name in SPLITS:
            sp = ds.split(name)
            for i in range(len(sp)):
                s = sp[i]
                assert (s.id, s.text) not in out, f"duplicate sample {s.id} {s.text!r}"
                out[(s.id, s.text)] = (name, s.text, s.points)
    return out


def opts(**kw) -> UnipenOptions:
    return UnipenOptions(progress=False, **kw)


def tar_of(top, out, mode):
    with tarfile.open(out, mode) as tf:
        tf.add(top, arcname="unipen")
    return out


# -- helpers of the format ------------------------------------------------------------------------

def test_parse_range_all_forms():
    assert parse_range("3") == [(3, None, 3, None)]
    assert parse_range("3-5") == [(3, None, 5, None)]
    assert parse_range("2:10-4:7") == [(2, 10, 4, 7)]
    assert parse_range("2:5") == [(2, 5, 2, 5)]  # one point
    assert parse_range("2:3-2:9") == [(2, 3, 2, 9)]
    assert parse_range("2-4:7") == [(2, None, 4, 7)]
    assert parse_range("2:4-5") == [(2, 4, 5, None)]
    assert parse_range("4-4") == [(4, None, 4, None)]
    assert parse_range("1,3-4,6:2-7:0") == [(1, None, 1, None), (3, None, 4, None), (6, 2, 7, 0)]


@pytest.mark.parametrize("bad", ["", "a", "5-3", "2:9-2:3", "1,,2", "1,", "-1", "1-", "3:", ":3", "1:2:3",
                                 "1.5", "3-2:0", "x-y"])
def test_parse_range_refuses_bad_ranges(bad):
    with pytest.raises(Skip, match="bad range"):
        parse_range(bad)


def test_label_helpers():
    assert unescape(r'say \"hi\" \\ ok') == 'say "hi" \\ ok'
    assert unescape(r"a\\\"b") == 'a\\"b'
    assert unescape(r"keep \n and \@") == r"keep \n and \@"  # only \" and \\ are escapes
    assert tidy_label("Phoenix , MN") == "Phoenix, MN"
    assert tidy_label("he said : ( yes ) !  and  [ no ] .") == "he said: (yes)! and [no]."
    assert tidy_label("  a   b ") == "a b"


def test_is_one_line_and_width_per_char():
    tab = Tablet()
    line = [letter(ch, i, tab).astype(float) for i, ch in enumerate("abcd")]
    assert is_one_line(line)
    # a dot over the first letter goes back left, but stays up: still one line
    assert is_one_line(line + [np.array([[90.0, 400.0], [92.0, 402.0]])])
    # the pen goes back to the left margin, below the first line: a second line
    assert not is_one_line(line + [letter("e", 0, tab, y0=-0.6).astype(float)])
    assert width_per_char([np.array([[0.0, 0], [50, 1]]), np.array([[100.0, 0], [150, 0]])], "abc") == 50.0
    assert width_per_char(line, "a") is None


def test_parse_ink_numbers_components():
    text = ".VERSION 1.0\n.WRITER_ID ann\n.PEN_DOWN\n1 2\n3 4\n.PEN_UP\n.PEN_DOWN\n5\t6\n.PEN_UP\n7 8\n9 10\n" \
           ".WRITER_ID bob\n.PEN_DOWN\r\n11 12\r\n.PEN_UP\n.PEN_DOWN\n1 x\n.PEN_UP\n"
    comps, writers, header = parse_ink(text)
    assert [k for k, _ in comps] == [".PEN_DOWN", ".PEN_DOWN", ".PEN_UP", ".PEN_DOWN", ".PEN_DOWN"]
    np.testing.assert_array_equal(comps[0][1], [[1, 2], [3, 4]])
    np.testing.assert_array_equal(comps[2][1], [[7, 8], [9, 10]])  # hover: numbered, not ink
    assert comps[4][1] is None  # non-numeric points
    assert writers == ["ann", "ann", "ann", "bob", "bob"]
    assert header.get(".VERSION") == "1.0"


# -- conversion --------------------------------------------------------------------------------------

def test_folder_tar_xz_and_tar_gz_give_the_same_samples(tmp_path):
    top = writers_corpus(tmp_path / "unipen", n_writers=5)
    outs = {}
    for name, path in (("dir", top), ("xz", tar_of(top, tmp_path / "u.tar.xz", "w:xz")),
                       ("gz", tar_of(top, tmp_path / "u.tar.gz", "w:gz"))):
        rep = convert_unipen(path, tmp_path / f"{name}.h5", opts())
        assert rep.kept == 5 * 4 and not rep.skipped, (name, rep.summary())
        outs[name] = read_all(tmp_path / f"{name}.h5")
    assert len(outs["dir"]) == 20
    for name in ("xz", "gz"):
        assert sorted(outs[name]) == sorted(outs["dir"]), name
        for k, (split, text, pts) in outs["dir"].items():
            s2, t2, p2 = outs[name][k]
            assert (s2, t2) == (split, text)
            np.testing.assert_array_equal(p2, pts)
    # the folder above the top folder reads the same
    parent = tmp_path / "parent"
    parent.mkdir()
    top.rename(parent / "unipen")
    convert_unipen(parent, tmp_path / "parent.h5", opts())
    assert sorted(read_all(tmp_path / "parent.h5")) == sorted(outs["dir"])


def _labels_corpus(top):
    tab = Tablet()
    ink = Ink(tab, "w1")
    segs = []
    rng, _ = ink.text("Phoenix , MN")
    segs.append(seg("TEXT", rng, "Phoenix , MN"))
    rng, _ = ink.text('say "hi" \\ ok')
    segs.append(seg("TEXT", rng, 'say "hi" \\ ok'))
    rng, _ = ink.text("ab cd")
    segs.append(f'.SEGMENT TEXT {rng} ? "ab\\@cd"')  # a ligature, as UNIPEN writes it
    rng, _ = ink.text("bad ink here")
    segs.append(seg("TEXT", rng, "bad ink here", quality="BAD"))
    first, _ = ink.text("two lines")
    second, _ = ink.text("of ink", y0=-0.6)  # back to the margin, one line lower
    segs.append(seg("TEXT", f"{first.split('-')[0]}-{second.split('-')[1]}", "two lines of ink"))
    rng, _ = ink.text("good line ok")
    segs.append(seg("TEXT", rng, "good line ok", quality="OK"))
    segs.append(seg("TEXT", "999", "past the end"))
    segs.append(seg("TEXT", "5-3", "backwards"))
    segs.append(".SEGMENT TEXT 1-2 ? no quotes")
    files = {"include/kp/kp.doc": tab.doc(), "include/kp/data/s1.dat": ink.dump(),
             "data/8/kp/lines": index(["kp/kp.doc", "kp/data/s1.dat"], segs),
             # an index whose ink file is not in the distribution
             "data/8/kp/lost": index(["kp/kp.doc", "kp/data/gone.dat"],
                                     [seg("TEXT", "0-3", "lost one"), seg("TEXT", "4-6", "lost two")])}
    return write_tree(top, files)


def test_labels_escapes_ligatures_bad_and_skips(tmp_path):
    top = _labels_corpus(tmp_path / "unipen")
    rep = convert_unipen(top, tmp_path / "o.h5", opts(val_frac=0, test_frac=0))
    got = sorted(t for _, t, _ in read_all(tmp_path / "o.h5").values())
    assert got == sorted(["Phoenix, MN", 'say "hi" \\ ok', "good line ok"])
    assert dict(rep.skipped) == {"ligature label": 1, "marked BAD": 1, "ink on more than one line": 1,
                                 "range past the ink": 1, "bad range": 1, "unreadable .SEGMENT line": 1,
                                 "missing include file": 2}
    assert rep.kept == 3


def test_empty_pen_up_is_no_component_hover_is_and_partial_ranges(tmp_path):
    tab = Tablet()
    ink = Ink(tab, "w1")
    # 0: "abc" written in one cursive stroke of 60 points (then a bare .PEN_UP: no component)
    cursive = np.concatenate([letter(ch, i, tab, n=20) for i, ch in enumerate("abc")])
    assert ink.stroke(cursive) == 0
    assert ink.stroke(letter("d", 3, tab), end=False) == 1  # 1: "d", ended by ...
    assert ink.hover(letter("d", 3.5, tab, y0=0.3, n=10)) == 2  # 2: a hover block with points
    assert ink.stroke(letter("e", 4, tab)) == 3
    assert ink.stroke(letter("f", 5, tab)) == 4
    segs = [seg("WORD", "0:0-0:39", "ab"),  # 40 points of component 0
            seg("WORD", "0:40-1:29", "cd"),  # the other 20, and all 30 of "d": 2 strokes
            # Only right if empty .PEN_UP blocks are no component and hover blocks are one:
            # counting every block, 3-4 would be the hover and "e"; counting only ink, past the end.
            seg("WORD", "3-4", "ef"),
            seg("WORD", "0:30-0:45", "bc"),  # points already in "ab"
            seg("WORD", "2", "zz")]  # hover only
    top = write_tree(tmp_path / "unipen", {"include/kp/kp.doc": tab.doc(), "include/kp/data/s.dat": ink.dump(),
                                           "data/6/kp/words": index(["kp/kp.doc", "kp/data/s.dat"], segs)})
    rep = convert_unipen(top, tmp_path / "o.h5", opts(val_frac=0, test_frac=0))
    assert dict(rep.skipped) == {"ink counted in another segment": 1, "no pen-down ink": 1}
    assert rep.kept == 3 and rep.source_points == 40 + 50 + 60
    strokes = {t: int(p[:, 2].sum()) for _, t, p in read_all(tmp_path / "o.h5").values()}
    assert strokes == {"ab": 1, "cd": 2, "ef": 2}


def _dedupe_corpus(top):
    """One line (category 8) whose words are also named by category 6; one word of another ink
    file named by both category 6 and 7."""
    tab = Tablet()
    ink = Ink(tab, "w1")
    line = "ab cd ef gh ij kl mn"
    rng, words = ink.text(line)
    other = Ink(tab, "w1")
    wrng, _ = other.text("op")
    inc = ["kp/kp.doc", "kp/data/s1.dat"]
    files = {"include/kp/kp.doc": tab.doc(), "include/kp/data/s1.dat": ink.dump(),
             "include/kp/data/s2.dat": other.dump(),
             "data/8/kp/lines": index(inc, [seg("TEXT", rng, line)]),
             "data/6/kp/words": index(inc, [seg("WORD", r, w) for w, r in words]),
             "data/6/kp/more": index(["kp/kp.doc", "kp/data/s2.dat"], [seg("WORD", wrng, "op")]),
             "data/7/kp/more": index(["kp/kp.doc", "kp/data/s2.dat"], [seg("WORD", wrng, "op")])}
    return write_tree(top, files), line


def test_dedupe_line_over_words_and_across_categories(tmp_path):
    top, line = _dedupe_corpus(tmp_path / "unipen")
    rep = convert_unipen(top, tmp_path / "o.h5", opts(val_frac=0, test_frac=0))
    texts = sorted(t for _, t, _ in read_all(tmp_path / "o.h5").values())
    assert texts == sorted([line, "op"])
    assert rep.kept == 2 and dict(rep.skipped) == {"ink counted in another segment": 7 + 1}


def test_categories_selection(tmp_path):
    top, line = _dedupe_corpus(tmp_path / "unipen")
    rep = convert_unipen(top, tmp_path / "8.h5", opts(categories=("8",), val_frac=0, test_frac=0))
    assert rep.kept == 1 and not rep.skipped
    assert [t for _, t, _ in read_all(tmp_path / "8.h5").values()] == [line]
    rep = convert_unipen(top, tmp_path / "6.h5", opts(categories=("6",), val_frac=0, test_frac=0))
    assert sorted(t for _, t, _ in read_all(tmp_path / "6.h5").values()) == sorted(line.split() + ["op"])
    assert not rep.skipped
    rep = convert_unipen(top, tmp_path / "67.h5", opts(categories=("6", "7"), val_frac=0, test_frac=0))
    assert rep.kept == 8 and dict(rep.skipped) == {"ink counted in another segment": 1}
    with pytest.raises(GenseqError, match="unknown UNIPEN categories") as err:
        convert_unipen(top, tmp_path / "x.h5", opts(categories=("8", "9")))
    assert "\n" not in str(err.value)
    with pytest.raises(GenseqError, match="not a UNIPEN distribution"):  # a known category with no index
        convert_unipen(top, tmp_path / "x.h5", opts(categories=("1a",)))
    assert not (tmp_path / "x.h5").exists()
    out = tmp_path / "cli.h5"
    r = CliRunner().invoke(main, ["data", "unipen", str(top), "--categories", "8", "-o", str(out), "--no-progress",
                                  "--val-frac", "0", "--test-frac", "0"])
    assert r.exit_code == 0, r.output
    assert "kept 1 lines" in r.output and [t for _, t, _ in read_all(out).values()] == [line]
    r = CliRunner().invoke(main, ["data", "unipen", str(top), "--categories", "8,9", "-o", str(tmp_path / "y.h5")])
    assert r.exit_code == 1 and "unknown UNIPEN categories" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "y.h5").exists()


def _positions(points: np.ndarray) -> np.ndarray:
    return np.cumsum(points[:, :2].astype(np.float64), axis=0)


def test_units_and_density_are_normalised_per_writer(tmp_path):
    """The same lines from a tablet at 1000 points per inch and one at 2x (x) and 3x (y) the
    resolution with 3x the points come out the same size, shape and density."""
    lines = ["the quick brown fox", "jumps over a lazy dog", "and back home again"]
    tabs = {"ta": Tablet(1000, 1000, 30, 100), "tb": Tablet(2000, 3000, 90, 300)}
    files = {}
    for c, tab in tabs.items():
        ink = Ink(tab, "same hand")
        segs = [seg("TEXT", ink.text(line)[0], line) for line in lines]
        files.update({f"include/{c}/{c}.doc": tab.doc(), f"include/{c}/data/s.dat": ink.dump(),
                      f"data/8/{c}/lines": index([f"{c}/{c}.doc", f"{c}/data/s.dat"], segs)})
    top = write_tree(tmp_path / "unipen", files)
    rep = convert_unipen(top, tmp_path / "o.h5", opts(val_frac=0, test_frac=0))
    assert rep.kept == 6 and not rep.skipped
    assert rep.source_points == sum(30 * len(line.replace(" ", "")) * 4 for line in lines)  # 30 + 90 a letter
    got = {}
    for k, (_, text, p) in read_all(tmp_path / "o.h5").items():
        xy = _positions(p)
        got[(k[0].split("-")[0], text)] = (np.ptp(xy[:, 0]) / len(text), np.ptp(xy[:, 1]), len(p) / len(text))
    for line in lines:
        (wa, ha, na), (wb, hb, nb) = got[("ta", line)], got[("tb", line)]
        assert wb == pytest.approx(wa, rel=0.03), line  # width per character
        assert hb == pytest.approx(ha, rel=0.03), line  # height: x and y units both honoured
        assert nb == pytest.approx(na, rel=0.08), line  # points per character
    for c in tabs:
        w = [v[0] for (cc, _), v in got.items() if cc == c]
        n = [v[2] for (cc, _), v in got.items() if cc == c]
        assert np.median(w) == pytest.approx(IAM_WIDTH_PER_CHAR, rel=0.1), c
        assert np.mean(n) == pytest.approx(IAM_POINTS_PER_CHAR, rel=0.15), c
    # the options change the target size and density
    convert_unipen(top, tmp_path / "half.h5", opts(val_frac=0, test_frac=0, width_per_char=100, points_per_char=5))
    for k, (_, text, p) in read_all(tmp_path / "half.h5").items():
        w0, _, n0 = got[(k[0].split("-")[0], text)]
        assert np.ptp(_positions(p)[:, 0]) / len(text) == pytest.approx(w0 * 100 / IAM_WIDTH_PER_CHAR, rel=0.1)
        assert len(p) / len(text) < 0.6 * n0


def test_splits_by_writer_and_no_writer_names_stored(tmp_path):
    top = writers_corpus(tmp_path / "unipen", n_writers=12)
    out = tmp_path / "o.h5"
    rep = convert_unipen(top, out, opts(val_frac=0.3, test_frac=0.3, seed=1))
    assert rep.kept == 12 * 4 and not rep.skipped
    samples = read_all(out)
    by_tag: dict[str, set] = {}
    for split, text, _ in samples.values():
        tag = text.split()[0]  # 'w' + the writer's letter: every text of a writer starts with it
        by_tag.setdefault(tag, set()).add(split)
    assert len(by_tag) == 12 and all(len(s) == 1 for s in by_tag.values()), by_tag  # a writer: one split
    assert len({next(iter(s)) for s in by_tag.values()}) >= 2  # and the writers do spread over splits
    # The two writers of the shared ink file each have their 4 samples (3 lines, 1 word).
    assert all(sum(1 for _, t, _ in samples.values() if t.split()[0] == tag) == 4 for tag in by_tag)
    # No writer name or file name anywhere: ids, texts, attributes, nor the raw bytes of the file.
    secrets = ["SECRETWRITER", "INKFILE", "IDXFILE", "IDXWORDS", "INKWORDS"]
    with StrokeDataset(out) as ds:
        attrs = [ds.alphabet, ds.source, ds.terms, ds.units, ds.resample]
        strings = attrs + [s for n in SPLITS for s in ds.split(n).ids + ds.split(n).texts]
    for secret in secrets:
        assert not any(secret.lower() in s.lower() for s in strings), secret
    raw = out.read_bytes().lower()
    for secret in secrets:
        assert secret.lower().encode() not in raw, secret


def test_ids_unique_across_index_files_of_one_contributor(tmp_path):
    # Two sessions of one writer, a segment on the same line of each index file:
    # the id hashes the index file itself, so they differ.
    tab = Tablet()
    files = {"include/kp/kp.doc": tab.doc()}
    for k, line in enumerate(["first session", "second session"]):
        ink = Ink(tab, "one writer")
        rng, _ = ink.text(line)
        files[f"include/kp/data/s{k}.dat"] = ink.dump()
        files[f"data/8/kp/index{k}"] = index(["kp/kp.doc", f"kp/data/s{k}.dat"], [seg("TEXT", rng, line)])
    top = write_tree(tmp_path / "unipen", files)
    rep = convert_unipen(top, tmp_path / "o.h5", opts(val_frac=0, test_frac=0))
    assert rep.kept == 2
    with StrokeDataset(tmp_path / "o.h5") as ds:
        ids = ds.split("train").ids
    assert len(set(ids)) == len(ids) == 2, ids


def test_not_unipen_and_bad_paths(tmp_path):
    junk = tmp_path / "junk"
    write_tree(junk, {"README": "hello\n", "include/kp/x.dat": ".PEN_DOWN\n1 2\n.PEN_UP\n",
                      "data/notes.txt": "not an index\n"})
    notar = tmp_path / "junk.tar.gz"
    notar.write_bytes(b"not a tar at all" * 10)
    for path, msg in ((junk, "not a UNIPEN distribution"), (tmp_path / "nope", "no such file or folder"),
                      (notar, "neither a folder nor a tar archive"),
                      (tar_of(junk, tmp_path / "junk.tar.xz", "w:xz"), "not a UNIPEN distribution")):
        with pytest.raises(GenseqError, match=msg) as err:
            convert_unipen(path, tmp_path / "o.h5", opts())
        assert "\n" not in str(err.value), path
        assert not (tmp_path / "o.h5").exists()
        r = CliRunner().invoke(main, ["data", "unipen", str(path), "-o", str(tmp_path / "o.h5"), "--no-progress"])
        assert r.exit_code == 1 and "Traceback" not in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1 and msg in r.output, r.output


def test_cli_converts_and_reports(tmp_path):
    top = _labels_corpus(tmp_path / "unipen")
    out = tmp_path / "o.h5"
    r = CliRunner().invoke(main, ["data", "unipen", str(top), "-o", str(out), "--no-progress", "-v",
                                  "--categories", "8", "--val-frac", "0", "--test-frac", "0"])
    assert r.exit_code == 0, r.output
    assert "kept 3 lines, skipped 8" in r.output and "missing include file 2" in r.output, r.output
    assert "8/kp: marked BAD" in r.output
    with StrokeDataset(out) as ds:
        assert ds.source.startswith("UNIPEN") and "UNIPEN" in ds.terms and "per writer" in ds.resample


def test_a_writer_with_jagged_ink_is_left_out(tmp_path):
    """A noisy sensor (every point jittered by about a letter's size) turns far more per
    step than handwriting; --max-turning leaves that writer out, 0 keeps it."""
    rng = np.random.default_rng(0)
    files = {}
    for c, noise in (("calm", 0.0), ("noisy", 0.1)):
        tab = Tablet()
        ink = Ink(tab, f"{c} writer")
        segs = []
        for line in ["first line of ink", "second line here"]:
            start = ink.n
            for i, ch in enumerate(line):
                if ch != " ":
                    xy = letter(ch, i, tab) + tab.units(rng.normal(0, noise, (tab.points, 2)))
                    ink.stroke(xy)
            segs.append(seg("TEXT", f"{start}-{ink.n - 1}", line))
        files.update({f"include/{c}/{c}.doc": tab.doc(), f"include/{c}/data/s.dat": ink.dump(),
                      f"data/8/{c}/lines": index([f"{c}/{c}.doc", f"{c}/data/s.dat"], segs)})
    top = write_tree(tmp_path / "unipen", files)
    rep = convert_unipen(top, tmp_path / "o.h5", opts(val_frac=0, test_frac=0))
    assert rep.kept == 2 and rep.skipped == {"jagged ink (noise or a coarse tablet)": 2}
    assert all(k[0].startswith("calm-") for k in read_all(tmp_path / "o.h5"))
    rep = convert_unipen(top, tmp_path / "all.h5", opts(val_frac=0, test_frac=0, max_turning=0))
    assert rep.kept == 4


def _tall(ch: str, i: int, tab: Tablet, height: float) -> np.ndarray:
    """A digit- or capital-like stroke `height` inches tall at position i."""
    t = np.linspace(0.0, 1.0, tab.points)
    x = i * 0.5 + 0.1 * np.sin(np.pi * t) + 0.05 * (ord(ch) % 3) * t
    return tab.units(np.stack([x, 1.0 + height * t], 1))


def test_isolated_characters_are_sized_by_height_and_stitched_into_lines(tmp_path):
    """Two writers on two tablets write digits, capitals and symbols one at a time at
    different sizes: both come out as lines of several characters with digits and
    capitals CHAR_HEIGHT widths per character tall and IAM-OnDB's density, every
    character once; a comma and a character 20x its writer's size are left out."""
    from genseq.strokes.unipen import CHAR_HEIGHT
    chars = {"1a": "0123456789" * 2, "1b": "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "1d": "#$%,"}
    files = {}
    for c, tab, height in (("ta", Tablet(1000, 1000, 30, 100), 0.3), ("tb", Tablet(2000, 3000, 90, 300), 0.8)):
        files[f"include/{c}/{c}.doc"] = tab.doc()
        for cat, text in chars.items():
            ink = Ink(tab, f"{c} writer")
            segs = [seg("CHARACTER", str(ink.stroke(_tall(ch, i, tab, height))), ch) for i, ch in enumerate(text)]
            if cat == "1a":  # one digit written at 20 times the size
                segs.append(seg("CHARACTER", str(ink.stroke(_tall("9", 0, tab, 20 * height))), "9"))
            files[f"include/{c}/data/{cat}.dat"] = ink.dump()
            files[f"data/{cat}/{c}/idx"] = index([f"{c}/{c}.doc", f"{c}/data/{cat}.dat"], segs)
    top = write_tree(tmp_path / "unipen", files)
    rep = convert_unipen(top, tmp_path / "o.h5", opts(categories=("1a", "1b", "1d"), val_frac=0, test_frac=0))
    assert dict(rep.skipped) == {"character below the baseline (not stitched)": 2,
                                 "isolated character out of proportion with its writer's": 2}
    got = read_all(tmp_path / "o.h5")
    assert rep.kept == len(got) and len(got) >= 6
    for c in ("ta", "tb"):
        texts = [t for (i, t) in got if i.startswith(c + "-")]
        assert sorted("".join(texts).replace(" ", "")) == sorted("".join(chars.values()).replace(",", ""))
        assert max(len(t) for t in texts) > 3 and any(" " in t for t in texts)
        points = [got[(i, t)][2] for (i, t) in got if i.startswith(c + "-")]
        heights = [np.ptp(_positions(p)[:, 1]) for p in points]
        # every character is one stroke of the same height: a line is as tall as one, plus the wobble
        assert np.median(heights) == pytest.approx(CHAR_HEIGHT * IAM_WIDTH_PER_CHAR, rel=0.1), c
        density = sum(len(p) for p in points) / sum(len(t) for t in texts)
        assert density == pytest.approx(IAM_POINTS_PER_CHAR, rel=0.2), c
    r = CliRunner().invoke(main, ["data", "unipen", str(top), "--categories", "1a,1b,1d", "-o",
                                  str(tmp_path / "cli.h5"), "--no-progress"])
    assert r.exit_code == 0 and f"kept {rep.kept} lines" in r.output, r.output
