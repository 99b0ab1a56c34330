"""UNIPEN converter: the train_r01_v07 distribution (a .tar.xz/.tar.gz archive
or the unpacked folder) -> genseq stroke HDF5. See datasets/unipen/README.md.

The format (Guyon et al., ICPR 1994): index files under `data/<category>/`
`.INCLUDE` files under `include/` (a header `.doc`, then the ink) and name
pieces of the ink with `.SEGMENT <level> <components> <quality> "<label>"`.
Components are numbered from 0 in the ink file: every `.PEN_DOWN` or
`.PEN_UP` block that holds points (pen-up points are hover, not ink); an
empty block is no component (a bare `.PEN_UP` only ends a stroke). A range item is `c`, `c-d`, `c:p-d:q` (point p
of component c to point q of component d, inclusive), joined by commas.

Ink is brought to the units and density of IAM-OnDB as `data iam-ondb
--every 2` writes it, per writer (see `convert_unipen`). Archives are read in
two streamed passes (index and header files, then ink), never unpacked.
"""
from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
from tqdm import tqdm

from ..errors import GenseqError
from .build import Builder, Report
from .clean import MAX_ABS_COORD, MAX_TEXT_CHARS, Skip, to_offsets, to_strokes
from .h5 import Sample
from .iam import iter_files
from .stitch import in_proportion, sizing_height, stitch, stitchable
from .style import turning_angles

SOURCE = "UNIPEN train_r01_v07 (International Unipen Foundation)"
TERMS = ("UNIPEN data is for research; it may not be distributed for commercial purposes. Cite I. Guyon, "
         "L. Schomaker, R. Plamondon, M. Liberman, S. Janet, 'UNIPEN project of on-line data exchange and "
         "recognizer benchmarks', ICPR 1994. Models trained on it must name the data and these terms.")
# IAM-OnDB's units (genseq.strokes.iam.UNITS) followed by how UNIPEN ink got there: a
# model trained on IAM-OnDB reads this file at scale 1 (genseq.strokes.batches.data_scale).
UNITS = ("IAM-OnDB whiteboard tablet units, y flipped to grow upwards (UNIPEN ink scaled per writer to "
         "the letter size of IAM-OnDB)")

CATEGORIES = ("1a", "1b", "1c", "1d", "2", "3", "6", "7", "8")
DEFAULT_CATEGORIES = ("6", "7", "8")
# Measured on `data iam-ondb --every 2 --keep-crossed-out` (10,092 training lines): points per
# character, 11.28. Width per character: IAM-OnDB's lowercase lines (90% or
# more lowercase or space) have a median of 186 units; UNIPEN's, brought to
# that width, are 20% flatter (median spread of y between its quartiles 105
# against 131). The target splits the difference in both directions:
# 186 * sqrt(131 / 105) = 207 (letters about 10% wider and 10% lower than
# IAM-OnDB's, within the ±10% stretch of training's --augment).
IAM_POINTS_PER_CHAR = 11.28
IAM_WIDTH_PER_CHAR = 207.0
MIN_CHARS_FOR_SIZE = 20  # a writer with fewer characters of words and lines is sized by the contributor
# Isolated characters are sized by height: a digit is 1.21 widths per character
# tall (median over 914 isolated digits of writers who also wrote words and
# lines, against their own median width per character; quartiles 0.93-1.61).
CHAR_HEIGHT = 1.21
# IAM-OnDB's lines hold 1.18 characters (spaces included) per written one:
# each isolated character is thinned to 1.18 x the target points per
# character, so that stitched lines, spaces counted, have IAM-OnDB's density.
CHARS_PER_LETTER = 1.18
ISOLATED = ("1a", "1b", "1c", "1d")

_SEGMENT = re.compile(r'^\.SEGMENT\s+(\S+)\s+(\S+)(?:\s+(\S+))?\s+"(.*)"\s*$')
_ITEM = re.compile(r"^(\d+)(?::(\d+))?(?:-(\d+)(?::(\d+))?)?$")
_INK = re.compile(rb"(?m)^\.PEN_DOWN[ \t]*\r?\n[ \t]*-?\d")
_SPACED = [(re.compile(r" +([,.;:!?)\]])"), r"\1"), (re.compile(r"([(\[]) +"), r"\1")]


@dataclass(frozen=True)
class UnipenOptions:
    """Options of `convert_unipen`; the CLI flags map one to one onto these.

    categories: which index folders to read (lines and words by default).
    points_per_char, width_per_char: the target density and size (IAM-OnDB's).
    smooth: low-pass each stroke before thinning it (a Gaussian of half the
    thinning step, in source points), which also removes the staircase of
    coarse tablets; 0 is off. max_turning: leave out a writer whose converted
    ink turns more than this many degrees per step (median over its pieces of
    `mean_turning`, at IAM-OnDB's points per character; in proportion at
    another density); 0 keeps all.

    Measured on the converted lines and words (median over pieces of the mean
    turning angle per pen-down step, inside strokes): IAM-OnDB 37 degrees;
    the low-pass lowers every UNIPEN contributor but one by 1-5 degrees, putting the
    coarse tablets (apa, app, pcl, lou, anj, hpb, ibm) at 27-51 and the others
    at 29-61; one noisy contributor stays at 70 (101 without), which
    max_turning leaves out."""

    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    val_frac: float = 0.05
    test_frac: float = 0.05
    seed: int = 0
    points_per_char: float = IAM_POINTS_PER_CHAR
    width_per_char: float = IAM_WIDTH_PER_CHAR
    smooth: float = 1.0
    max_turning: float = 65.0
    progress: bool = True


@dataclass
class _Segment:
    index: str  # "<category>/<contributor>", for the report
    path: str  # the index file (relative path): never stored, only hashed into the id
    n: int  # segment number in its index file
    category: str
    level: str
    ranges: list  # [(c0, p0, c1, p1)], p None = whole component
    label: str
    header: dict  # keywords in force from the files included before the ink


def unescape(label: str) -> str:
    """UNIPEN label escapes: \\" is ", \\\\ is \\."""
    return re.sub(r'\\(["\\])', r"\1", label)


def tidy_label(label: str) -> str:
    """Category 8 writes punctuation apart (`Phoenix , MN`): join it as written."""
    out = " ".join(label.split())
    for pat, rep in _SPACED:
        out = pat.sub(rep, out)
    return out


def parse_range(spec: str) -> list[tuple[int, int | None, int, int | None]]:
    """'3', '3-5', '2:10-4:7', '1,3-4' -> [(c0, p0, c1, p1)] (p None: whole component)."""
    out = []
    for item in spec.split(","):
        m = _ITEM.match(item)
        if not m:
            raise Skip("bad range")
        c0, p0, c1, p1 = m.groups()
        c0 = int(c0)
        p0 = None if p0 is None else int(p0)
        c1 = c0 if c1 is None else int(c1)
        p1 = None if p1 is None else int(p1)
        if m.group(3) is None and p0 is not None:  # 'c:p' alone: one point
            p1 = p0
        if c1 < c0 or (c1 == c0 and p0 is not None and p1 is not None and p1 < p0):
            raise Skip("bad range")
        out.append((c0, p0, c1, p1))
    return out


def _keywords(text: str) -> dict:
    """Header keywords of a UNIPEN file: keyword -> the rest of its line (the
    last one wins); .INCLUDE -> the list of included files."""
    out: dict = {".INCLUDE": []}
    for line in text.splitlines():
        if line.startswith("."):
            parts = line.split(None, 1)
            value = parts[1].strip() if len(parts) > 1 else ""
            if parts[0] == ".INCLUDE":
                out[".INCLUDE"].append(value.split()[0] if value else "")
            else:
                out[parts[0]] = value
    return out


def _where(name: str) -> tuple[str, str]:
    """'unipen/include/apa/x.dat' or 'include/apa/x.dat' -> ('include', 'apa/x.dat')."""
    parts = PurePosixPath(name).parts
    for i in range(min(2, len(parts))):
        if parts[i] in ("data", "include"):
            return parts[i], "/".join(parts[i + 1:])
    return "", name


def parse_ink(text: str, coord: list[str] | None = None):
    """An ink file -> (components, writers, header): components [(kind, (n, k) float64 or None)]
    in numbering order (empty PEN_UP blocks are no component), each with the
    writer in force; header keywords met in the file. Non-numeric points make
    that component None."""
    comps, writers, header = [], [], {}
    writer = ""
    for block in re.split(r"\n(?=\.)", "\n" + text.replace("\r", "")):
        block = block.strip()
        if not block.startswith("."):
            continue
        parts = block.split(None, 1)
        key, rest = parts[0], (parts[1] if len(parts) > 1 else "")
        if key in (".PEN_DOWN", ".PEN_UP"):
            if not rest.strip():  # an empty block is no component (a bare .PEN_UP ends a stroke)
                continue
            ncol = len(coord) if coord else 2
            try:
                a = np.array(rest.split(), dtype=np.float64)
                a = a.reshape(-1, ncol) if len(a) % ncol == 0 else None
            except ValueError:
                a = None
            comps.append((key, a))
            writers.append(writer)
        elif key == ".WRITER_ID":
            writer = rest.strip()
        elif key == ".COORD":
            coord = rest.split()
            header[key] = rest.strip()
        elif key != ".INCLUDE":
            header[key] = rest.strip().split("\n")[0]
    return comps, writers, header


def _number(header: dict, key: str) -> float | None:
    try:
        v = float(header[key].split()[0])
    except (KeyError, ValueError, IndexError):
        return None
    return v if v > 0 and np.isfinite(v) else None


def _pieces(comps, spans) -> tuple[list[np.ndarray], int]:
    """The pen-down strokes (n, 2) in a segment's spans (_spans), and its source point count."""
    strokes = [comps[c][1][lo:hi] for c, lo, hi in spans if comps[c][0] == ".PEN_DOWN" and hi > lo]
    return strokes, sum(len(s) for s in strokes)


def _smooth_thin(a: np.ndarray, step: float, sigma: float) -> np.ndarray:
    """One stroke (n, 2): Gaussian low-pass (sigma source points), then points at
    every `step` source points by linear interpolation, both ends kept."""
    n = len(a)
    if n <= 2:
        return a
    if sigma > 0.3:
        r = int(np.ceil(3 * sigma))
        k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
        k /= k.sum()
        padded = np.concatenate([np.repeat(a[:1], r, 0), a, np.repeat(a[-1:], r, 0)])
        sm = np.stack([np.convolve(padded[:, j], k, mode="valid") for j in range(2)], 1)
        sm[0], sm[-1] = a[0], a[-1]
        a = sm
    m = max(int(round((n - 1) / step)), 1)
    t = np.linspace(0, n - 1, m + 1)
    return np.stack([np.interp(t, np.arange(n), a[:, j]) for j in range(2)], 1)


def is_one_line(strokes: list[np.ndarray]) -> bool:
    """False when the ink goes on to a new line: a stroke that starts more than a
    quarter of the ink's width so far back to the left, and entirely below the
    middle of what came before (y up). Dots and crossings go back, but stay up."""
    lo_x = hi_x = None
    ys: list[np.ndarray] = []
    for s in strokes:
        if lo_x is not None:
            before = np.concatenate(ys)
            mid = 0.5 * (before.min() + before.max())
            if s[0, 0] < hi_x - 0.25 * (hi_x - lo_x) and s[:, 1].max() < mid - 0.5 * (before.max() - before.min()):
                return False
            lo_x, hi_x = min(lo_x, s[:, 0].min()), max(hi_x, s[:, 0].max())
        else:
            lo_x, hi_x = s[:, 0].min(), s[:, 0].max()
        ys.append(s[:, 1])
    return True


def width_per_char(strokes: list[np.ndarray], text: str) -> float | None:
    """Horizontal extent of the ink over its characters (a size that digits,
    capitals and lowercase share, unlike a height); None for one character."""
    if len(text) < 2:
        return None
    xs = np.concatenate([s[:, 0] for s in strokes])
    return float(xs.max() - xs.min()) / len(text)


@dataclass
class Piece:
    group: str  # hashed writer
    contrib: str
    id: str
    text: str
    strokes: list  # (n, 2) in inches, y up, repeats dropped
    source_points: int
    raw: list | None = None  # (n, 2) source units, every point (read_unipen(keep_raw=True))
    header: dict | None = None  # the ink's header keywords (with keep_raw)
    category: str = ""  # the index folder: "1a".."1d" are isolated characters


def _writer_hash(contrib: str, writer: str) -> str:
    return hashlib.sha256(f"unipen\0{contrib}\0{writer}".encode("utf-8")).hexdigest()[:12]


def _read_index(rel: str, data: bytes, cats: set, report: Report):
    """An index file (`<category>/<contributor>/...`) -> (category, contributor,
    includes, [(n, level, range, quality, label)], its path)."""
    parts = PurePosixPath(rel).parts
    if len(parts) < 3 or parts[0] not in cats:
        return None
    cat, contrib = parts[0], parts[1]
    text = data.decode("latin-1")
    includes, segs = [], []
    for n, line in enumerate(text.splitlines()):
        if line.startswith(".INCLUDE"):
            bits = line.split()
            if len(bits) >= 2:
                includes.append(bits[1])
        elif line.startswith(".SEGMENT"):
            m = _SEGMENT.match(line.strip())
            if not m:
                report.skip(f"{cat}/{contrib}", "unreadable .SEGMENT line")
                continue
            level, spec, quality, label = m.groups()
            segs.append((n, level.upper(), spec, (quality or "").upper(), unescape(label)))
    return cat, contrib, includes, segs, rel


def convert_unipen(path, out, opts: UnipenOptions = UnipenOptions()) -> Report:
    """Convert UNIPEN to a genseq stroke file at `out`; returns the report.

    Per writer (a contributor's `.WRITER_ID`, else its ink file), after points
    per inch made x and y inches: the ink is thinned in pen time (source
    points are evenly timed, `.POINTS_PER_SECOND`) to IAM-OnDB's points per
    character, and scaled so that its median width per character over the
    writer's words and lines is the target's. Splits are by writer; writers are
    stored only as a hash."""
    report = Report()
    return _write(read_unipen(path, opts, report), out, opts, report)


def read_unipen(path, opts: UnipenOptions = UnipenOptions(), report: Report | None = None,
                keep_raw: bool = False) -> list[Piece]:
    """The usable pieces of ink of a UNIPEN distribution (each counted once),
    in inches; with keep_raw also the recorded points and header of each."""
    cats = set(opts.categories)
    unknown = cats - set(CATEGORIES)
    if unknown:
        raise GenseqError(f"unknown UNIPEN categories {sorted(unknown)}; choose from {', '.join(CATEGORIES)}")
    report = report if report is not None else Report()
    # Pass 1: index files, and the header keywords of every include file.
    indexes, headers, ink_names = [], {}, set()
    for name, read in iter_files(path, "", report):
        top, rel = _where(name)
        if top == "data":
            r = _read_index(rel, read(), cats, report)
            if r is not None:
                indexes.append(r)
        elif top == "include":
            data = read()
            m = _INK.search(data)
            head = data[:m.start()] if m else data
            headers[rel] = _keywords(head.decode("latin-1"))
            if m:
                ink_names.add(rel)
    if not indexes:
        raise GenseqError(f"{path}: not a UNIPEN distribution (no data/<category>/<contributor>/... index "
                          f"files of categories {', '.join(sorted(cats))})")
    # Which segments each ink file serves, with the header keywords in force.
    want: dict[str, list[_Segment]] = defaultdict(list)
    for cat, contrib, includes, segs, ipath in indexes:
        header, ink, missing = {}, None, False
        for inc in includes:
            if inc not in headers:
                missing = True
                continue
            for sub in headers[inc].get(".INCLUDE", []):  # an ink file that includes its own .doc
                header.update({k: v for k, v in headers.get(sub, {}).items() if k != ".INCLUDE"})
            header.update({k: v for k, v in headers[inc].items() if k != ".INCLUDE"})
            if inc in ink_names:
                ink = inc
        where = f"{cat}/{contrib}"
        if ink is None:
            report.skip(where, "missing include file" if missing else "no ink", len(segs))
            continue
        for n, level, spec, quality, label in segs:
            if quality == "BAD":
                report.skip(where, "marked BAD")
                continue
            if "\\@" in label:
                report.skip(where, "ligature label")
                continue
            try:
                ranges = parse_range(spec)
            except Skip as err:
                report.skip(where, str(err))
                continue
            text = tidy_label(label) if cat == "8" else " ".join(label.split())
            if not text:
                report.skip(where, "empty label")
                continue
            if len(text) > MAX_TEXT_CHARS:
                report.skip(where, f"label longer than {MAX_TEXT_CHARS:,} characters")
                continue
            if any(ord(ch) < 32 or ord(ch) > 126 for ch in text):
                report.skip(where, "label outside printable ASCII")
                continue
            want[ink].append(_Segment(where, ipath, n, cat, level, ranges, text, header))
    # Pass 2: the ink, each segment once.
    pieces: list[Piece] = []
    with tqdm(total=len(want), unit="file", desc="unipen ink", disable=not opts.progress, leave=False) as bar:
        for name, read in iter_files(path, ".dat"):
            top, rel = _where(name)
            segs = want.pop(rel, None) if top == "include" else None
            if not segs:
                continue
            bar.update(1)
            _cut(rel, read().decode("latin-1"), segs, pieces, report, keep_raw)
    for segs in want.values():
        report.skip(segs[0].index, "missing include file", len(segs))
    return pieces


def _cut(rel: str, text: str, segs: list[_Segment], pieces: list, report: Report, keep_raw: bool = False) -> None:
    """Cut one ink file's segments, longest first, skipping ink already taken."""
    contrib = rel.split("/")[0]
    header = dict(segs[0].header)
    coord = header.get(".COORD", "X Y").split()
    comps, writers, own = parse_ink(text, coord)
    header.update(own)
    coord = header.get(".COORD", "X Y").split()
    xi, yi = (coord.index("X"), coord.index("Y")) if "X" in coord and "Y" in coord else (0, 1)
    # Points per inch give inches and square units; without them the source
    # units are taken as square. Either way each writer is scaled by its own
    # width per character later, so only the x:y ratio matters here.
    ppx = _number(header, ".X_POINTS_PER_INCH") or 25.4 * (_number(header, ".X_POINTS_PER_MM") or 1 / 25.4)
    ppy = _number(header, ".Y_POINTS_PER_INCH") or 25.4 * (_number(header, ".Y_POINTS_PER_MM") or ppx / 25.4)
    taken: dict[int, list[tuple[int, int]]] = defaultdict(list)  # component -> taken point spans
    rank = {"TEXT": 0, "LINE": 0, "SENTENCE": 0, "WORD": 1}
    order = sorted(segs, key=lambda s: (rank.get(s.level, 2), -len(s.label)))
    for seg in order:
        where = seg.index
        try:
            spans = _spans(comps, seg.ranges)
            strokes, n_src = _pieces(comps, spans)
            if any(_overlaps(taken[c], lo, hi) for c, lo, hi in spans):
                raise Skip("ink counted in another segment")
            if not strokes:
                raise Skip("no pen-down ink")
            xy = []
            for s in strokes:
                a = s[:, [xi, yi]] / np.array([ppx, ppy])
                if not np.all(np.isfinite(a)) or np.any(np.abs(s[:, [xi, yi]]) > MAX_ABS_COORD):
                    raise Skip("non-numeric points")
                keep = np.ones(len(a), bool)
                keep[1:] = np.any(a[1:] != a[:-1], axis=1)
                xy.append(a[keep])
            if seg.category not in ISOLATED and not is_one_line(xy):
                raise Skip("ink on more than one line")
            c0 = seg.ranges[0][0]
            writer = writers[c0] if c0 < len(writers) and writers[c0] else rel
        except Skip as err:
            report.skip(where, str(err))
            continue
        for c, lo, hi in spans:
            taken[c].append((lo, hi))
        group = _writer_hash(contrib, writer)
        pieces.append(Piece(group, contrib,
                             f"{contrib}-{group[:8]}-{hashlib.sha256(f'{seg.path}/{seg.n}'.encode()).hexdigest()[:8]}",
                             seg.label, xy, n_src,
                             [st[:, [xi, yi]] for st in strokes] if keep_raw else None,
                             header if keep_raw else None, seg.category))


def _spans(comps, ranges) -> list[tuple[int, int, int]]:
    """A segment's ranges as (component, first point, end point) spans; Skip for a
    range past the ink or a component whose points are not numbers."""
    out = []
    for c0, p0, c1, p1 in ranges:
        if c1 >= len(comps):
            raise Skip("range past the ink")
        for c in range(c0, c1 + 1):
            if comps[c][1] is None:
                raise Skip("non-numeric points")
            lo = p0 if (c == c0 and p0 is not None) else 0
            hi = p1 + 1 if (c == c1 and p1 is not None) else len(comps[c][1])
            out.append((c, lo, hi))
    return out


def _overlaps(spans: list[tuple[int, int]], lo: int, hi: int) -> bool:
    return any(a < hi and lo < b for a, b in spans)


def _write(pieces: list[Piece], out, opts: UnipenOptions, report: Report) -> Report:
    """Size and density per writer, then the HDF5 file, split by writer.
    Isolated characters (categories 1a-1d) are stitched into lines (`_stitched`)."""
    lines = [p for p in pieces if p.category not in ISOLATED]
    chars = [p for p in pieces if p.category in ISOLATED]
    builder = Builder(out, val_frac=opts.val_frac, test_frac=opts.test_frac, seed=opts.seed, source=SOURCE,
                      terms=TERMS, units=UNITS,
                      resample=(f"per writer: thinned in pen time to {opts.points_per_char:g} points per "
                                f"character (Gaussian low-pass of {opts.smooth:g} x half the step first), "
                                f"scaled to {opts.width_per_char:g} units of width per character"
                                + (f"; isolated characters scaled so that digits and capitals are "
                                   f"{opts.width_per_char * CHAR_HEIGHT:g} units tall and stitched into lines"
                                   if chars else "")))
    builder.report = report
    with builder:
        _lines(lines, builder, opts, report)
        _stitched(chars, builder, opts, report)
    return report


def _by_writer(pieces: list[Piece]) -> dict[str, list[Piece]]:
    by: dict[str, list[Piece]] = defaultdict(list)
    for pc in pieces:
        by[pc.group].append(pc)
    return by


def _thinned(ps: list[Piece], scale: float, opts: UnipenOptions, report: Report,
             per_char: float = 1.0) -> list[tuple[list[np.ndarray], np.ndarray]] | None:
    """A writer's pieces thinned to per_char x the target points per character
    and scaled: (absolute strokes, their offsets) per piece; None (counted)
    when the ink is too jagged."""
    pts = sum(p.source_points for p in ps)
    step = max(pts / (opts.points_per_char * per_char * sum(len(p.text) for p in ps)), 1.0)
    strokes = [[_smooth_thin(s, step, opts.smooth * step / 2) * scale for s in p.strokes] for p in ps]
    done = [(st, to_offsets(st)) for st in strokes]
    turns = [t for t in (mean_turning(offs) for _, offs in done) if t is not None]
    # fewer points per character turn more per step: the limit is for IAM-OnDB's density
    limit = opts.max_turning * IAM_POINTS_PER_CHAR / opts.points_per_char
    if opts.max_turning and turns and float(np.median(turns)) > limit:
        report.skip(ps[0].contrib, "jagged ink (noise or a coarse tablet)", len(ps))
        return None
    return done


def _lines(pieces: list[Piece], builder: Builder, opts: UnipenOptions, report: Report) -> None:
    """Words and lines: each writer scaled to the target width per character."""
    wpc = {id(pc): width_per_char(pc.strokes, pc.text) for pc in pieces}  # None for one character
    contrib_wpc: dict[str, list[float]] = defaultdict(list)
    for pc in pieces:
        if wpc[id(pc)]:
            contrib_wpc[pc.contrib].append(wpc[id(pc)])
    for group, ps in _by_writer(pieces).items():
        wpcs = [wpc[id(p)] for p in ps if wpc[id(p)]]
        chars = sum(len(p.text) for p in ps if len(p.text) > 1)
        if chars < MIN_CHARS_FOR_SIZE or not wpcs:
            wpcs = contrib_wpc.get(ps[0].contrib, [])
        if not wpcs:
            report.skip(ps[0].contrib, "no words or lines to size the writer by", len(ps))
            continue
        done = _thinned(ps, opts.width_per_char / float(np.median(wpcs)), opts, report)
        for p, (_, offsets) in zip(ps, done or ()):
            builder.add(group, Sample(p.id, p.text, offsets), p.source_points)


def _stitched(pieces: list[Piece], builder: Builder, opts: UnipenOptions, report: Report) -> None:
    """Isolated characters: each writer scaled so that the median height of
    their digits and capitals is CHAR_HEIGHT widths per character (their
    contributor's median height without any), thinned like lines (with room
    for the spaces to come: CHARS_PER_LETTER), then stitched into lines of
    words (stitch.py); each character once."""
    left = [p for p in pieces if not stitchable(p.text)]
    if left:
        report.skip("isolated", "character below the baseline (not stitched)", len(left))
    by = _by_writer([p for p in pieces if stitchable(p.text)])
    own = {g: sizing_height([(p.text, p.strokes) for p in ps]) for g, ps in by.items()}
    contrib_h: dict[str, list[float]] = defaultdict(list)
    for g, ps in by.items():
        if own[g]:
            contrib_h[ps[0].contrib].append(own[g])
    target = opts.width_per_char * CHAR_HEIGHT
    for group, ps in by.items():
        h = own[group] or (float(np.median(contrib_h[ps[0].contrib])) if contrib_h[ps[0].contrib] else None)
        if not h:
            report.skip(ps[0].contrib, "no digits or capitals to size the writer by", len(ps))
            continue
        fit = [p for p in ps if in_proportion(p.text, p.strokes, h)]
        if len(fit) < len(ps):
            report.skip(ps[0].contrib, "isolated character out of proportion with its writer's", len(ps) - len(fit))
        ps = fit
        if not ps:
            continue
        done = _thinned(ps, target / h, opts, report, CHARS_PER_LETTER)
        if done is None:
            continue
        rng = np.random.default_rng([opts.seed, int(group, 16)])
        made = stitch([(p.text, strokes) for p, (strokes, _) in zip(ps, done)], target, rng)
        for k, (text, strokes, used) in enumerate(made):
            builder.add(group, Sample(f"{ps[0].contrib}-{group[:8]}-chars{k:04d}", text, to_offsets(strokes)),
                        sum(ps[i].source_points for i in used))


def mean_turning(points: np.ndarray) -> float | None:
    """The mean turning angle in degrees between successive pen-down steps of
    (N, 3) offsets, inside each stroke (style.turning_angles): a staircase or a
    noisy sensor turns far more than handwriting; None with fewer than 2 angles."""
    turns = turning_angles(to_strokes(points))
    return float(np.degrees(np.mean(turns))) if len(turns) > 1 else None
