"""IAM-OnDB converter: lineStrokes + ascii (official .tar.gz archives or the
extracted folders) -> genseq stroke HDF5. See datasets/iam-ondb/README.md.

Archives are streamed (`tarfile` mode "r|*"), never extracted: memory holds
the transcriptions (a few MB) and the kept sequences, not the XML.
"""
from __future__ import annotations

import bz2
import contextlib
import functools
import gzip
import lzma
import os
import re
import stat
import tarfile
import zlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from tqdm import tqdm

from ..atomic import file_kind
from ..errors import GenseqError, first_line
from .build import Builder, Report
from .xmlsafe import parse_xml
from .clean import CleanOptions, Skip, check_text, clean_strokes
from .h5 import Sample
from .normalise import IAM_UNITS

SOURCE = "IAM On-Line Handwriting Database (IAM-OnDB)"
TERMS = ("IAM-OnDB is provided for non-commercial research only; cite U.-V. Marti, M. Liwicki, "
         "H. Bunke, 'IAM-OnDB - an On-Line English Sentence Database Acquired from Handwritten "
         "Text on a Whiteboard', ICDAR 2005. Models trained on it must name the data and these terms.")
UNITS = IAM_UNITS

_STROKE_NAME = re.compile(r"^(?P<form>[A-Za-z0-9]+-[A-Za-z0-9]+)-(?P<line>\d+)\.xml$")
_GROUP = re.compile(r"^([a-z]\d\d-\d\d\d)")


@dataclass(frozen=True)
class IamOptions:
    """Options of `convert_iam`; the CLI flags map one to one onto these."""

    val_frac: float = 0.05
    test_frac: float = 0.05
    seed: int = 0
    clean: CleanOptions = CleanOptions()
    progress: bool = True
    keep_crossed_out: bool = False  # keep lines with a crossed-out word (CROSSED_OUT in the transcription)


# IAM-OnDB's transcriptions write "#" for a word the writer struck through (the ink at that place is a
# scribble over a word, now and then a hash sign copied from the prompt): a model trained on such lines
# learns "#" as a scribble, and its reader learns to read a scribble as "#".
CROSSED_OUT = "#"


def crossed_out(text: str) -> bool:
    """Whether a transcription marks a crossed-out word: "#" as a word of its own."""
    return CROSSED_OUT in text.split()


def group_of(form: str) -> str:
    """`a01-000u` -> `a01-000`: the text prompt shared by several writers."""
    m = _GROUP.match(form)
    return m.group(1) if m else form


# The largest file or archive member read: far above any real one (IAM-OnDB's
# stroke files are under 1 MB, UNIPEN's largest ink file about 4 MB in the
# train release, 20 MB in the full one); a larger one is skipped as `too large`.
MAX_FILE_BYTES = 64 * 1024 * 1024


def iter_files(path: str | os.PathLike, suffix: str,
               report: Report | None = None) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """Yield (relative path, read) for each file ending in `suffix`, from a
    folder (sorted walk) or a tar archive (streamed, in archive order).

    Only regular files are read (a symlink counts as what it points to): a
    device, FIFO, socket or link member of a matching name is skipped as `not
    a regular file`, one of more than MAX_FILE_BYTES as `too large` (without
    reading it), counted in `report` when one is given. `read()` returns at
    most MAX_FILE_BYTES bytes, so memory stays bounded whatever the input."""
    path = Path(path)

    def skip(name: str, reason: str) -> None:
        if report is not None:
            report.skip(name, reason)

    if path.is_dir():
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                if name.endswith(suffix):
                    full = Path(root) / name
                    rel = full.relative_to(path).as_posix()
                    try:
                        st = os.stat(full)  # follows a symlink: /dev/zero behind a link is a device
                    except OSError:
                        skip(rel, "unreadable")
                        continue
                    if not stat.S_ISREG(st.st_mode):
                        skip(rel, "not a regular file")
                    elif st.st_size > MAX_FILE_BYTES:
                        skip(rel, "too large")
                    else:
                        yield rel, functools.partial(_read_regular, full)
        return
    if not path.exists():
        raise GenseqError(f"{path}: no such file or folder")
    with contextlib.ExitStack() as stack:
        try:
            tf = stack.enter_context(_open_tar(path, stack))
        except _ARCHIVE_ERRORS as err:
            with open(path, "rb") as fh:
                compressed = _decompressor(fh.read(6)) is not None
            if compressed:  # a compressed file that holds no readable tar: cut short, or something else
                raise GenseqError(f"{path}: damaged archive, or not a tar inside ({first_line(err)})") from None
            raise GenseqError(f"{path}: neither a folder nor a tar archive (.tar.gz)") from None
        try:
            for member in tf:
                if not member.name.endswith(suffix) or member.isdir():
                    continue
                if not member.isfile():
                    skip(member.name, "not a regular file")
                elif member.size > MAX_FILE_BYTES:
                    skip(member.name, "too large")  # skipped by reading through it, a block at a time
                else:
                    yield member.name, functools.partial(tf.extractfile(member).read, MAX_FILE_BYTES)
        except _ARCHIVE_ERRORS as err:
            raise GenseqError(f"{path}: damaged archive ({first_line(err)})") from None


# What a damaged or foreign archive raises, from tarfile or a decompressor.
_ARCHIVE_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError)


def _open_tar(path: Path, stack: contextlib.ExitStack) -> tarfile.TarFile:
    """A tar archive (plain, .gz, .bz2 or .xz), streamed. The decompressors of the
    gzip, bz2 and lzma modules hand out at most what is asked for; tarfile's own
    (mode "r|*") decompresses a whole read at once, so that a member of zeros,
    which compresses 1000:1, would take hundreds of MB to skip."""
    raw = stack.enter_context(open(path, "rb"))
    opener = _decompressor(raw.peek(6)[:6])
    stream = stack.enter_context(opener(raw)) if opener else raw
    return tarfile.open(fileobj=stream, mode="r|", bufsize=1 << 20)


# The compressed formats an archive may come in, by their first bytes.
_DECOMPRESSORS = {b"\x1f\x8b": lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"), b"BZh": bz2.BZ2File,
                  b"\xfd7zXZ\x00": lzma.LZMAFile}


def _decompressor(magic: bytes):
    """The opener of the compressed format whose first bytes are `magic`; None if none."""
    return next((f for m, f in _DECOMPRESSORS.items() if magic.startswith(m)), None)


def _read_regular(path: Path) -> bytes:
    """The bytes of `path`, which must (still) be a regular file of at most MAX_FILE_BYTES."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise GenseqError(f"{path}: no such file (removed while reading?)") from None
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise GenseqError(f"{path}: is {file_kind(mode)}, not a regular file")
        data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise GenseqError(f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB (grew while reading?)")
    return data


def parse_csr(data: bytes) -> list[str] | None:
    """The text lines after `CSR:` (blank lines dropped), or None without a CSR section."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "CSR:":
            return [s.strip() for s in lines[i + 1:] if s.strip()]
    return None


def read_transcriptions(ascii_path: str | os.PathLike) -> dict[str, list[str] | None]:
    """form id (`a01-000u`) -> CSR lines (None: file without a CSR section)."""
    forms = {}
    for name, read in iter_files(ascii_path, ".txt"):
        forms[Path(name).stem] = parse_csr(read())
    return forms


# One IAM-OnDB stroke file (XML): its files are under 1 MB; an element tree takes about 20
# times its file's bytes, so a larger one is skipped as `too large` before it is parsed.
MAX_STROKE_XML_BYTES = 8 * 1024 * 1024


def parse_stroke_xml(data: bytes) -> list[np.ndarray]:
    """IAM `<StrokeSet><Stroke><Point x= y=/>` -> list of (n, 2) float64, tablet
    coordinates (y down). Raises Skip on malformed, refused or too large XML."""
    if len(data) > MAX_STROKE_XML_BYTES:
        raise Skip("too large")
    root = parse_xml(data)
    strokes = []
    try:
        for stroke in root.iter("Stroke"):
            strokes.append(np.array([(float(p.attrib["x"]), float(p.attrib["y"]))
                                     for p in stroke.iter("Point")], dtype=np.float64).reshape(-1, 2))
    except (KeyError, ValueError):
        raise Skip("bad point") from None
    return strokes


def _stroke_index(line_strokes: str | os.PathLike, report: Report | None = None) -> dict[str, list[int]]:
    """Pass 1 (names only): form -> sorted line numbers of its stroke files (the
    members it cannot read counted in `report`)."""
    index: dict[str, list[int]] = defaultdict(list)
    for name, _ in iter_files(line_strokes, ".xml", report):
        m = _STROKE_NAME.match(Path(name).name)
        if m:
            index[m["form"]].append(int(m["line"]))
    return {form: sorted(lines) for form, lines in index.items()}


def convert_iam(line_strokes: str | os.PathLike, ascii_path: str | os.PathLike, out: str | os.PathLike,
                opts: IamOptions = IamOptions()) -> Report:
    """Convert IAM-OnDB to a genseq stroke file at `out`; returns the report."""
    for p in (line_strokes, ascii_path):
        if not Path(p).exists():
            raise GenseqError(f"{p}: no such file or folder")
    texts = read_transcriptions(ascii_path)
    if not texts:
        raise GenseqError(f"{ascii_path}: no transcription (.txt) files found")
    unread = Report()
    index = _stroke_index(line_strokes, unread)
    n_files = sum(len(v) for v in index.values())
    if not n_files:
        raise GenseqError(f"{line_strokes}: no stroke files (<form>-<line>.xml) found"
                          + (f"; left out: {unread.reasons()}" if unread.skipped else ""))
    builder = Builder(out, val_frac=opts.val_frac, test_frac=opts.test_frac, seed=opts.seed,
                      source=SOURCE if opts.keep_crossed_out else f"{SOURCE}, lines with a crossed-out word left out",
                      terms=TERMS, units=UNITS, resample=opts.clean.describe())
    report = builder.report
    with builder, tqdm(total=n_files, unit="line", desc="iam-ondb", disable=not opts.progress,
                       leave=False) as bar:
        for name, read in iter_files(line_strokes, ".xml", report):
            bar.update(1)
            m = _STROKE_NAME.match(Path(name).name)
            if not m:
                report.skip(name, "unexpected file name")
                continue
            form, line = m["form"], int(m["line"])
            lines = texts.get(form, "missing")
            if lines == "missing":
                report.skip(name, "no transcription")
                continue
            if lines is None:
                report.skip(name, "no CSR section")
                continue
            if len(lines) != len(index[form]):
                report.skip(name, "count mismatch")
                continue
            text = lines[index[form].index(line)]  # stroke file k <-> CSR line k
            try:
                if not text:
                    raise Skip("empty text")
                check_text(text)
                if not opts.keep_crossed_out and crossed_out(text):
                    raise Skip("crossed-out word")
                raw = parse_stroke_xml(read())
                points = clean_strokes(raw, opts.clean, y_down=True)
            except Skip as err:
                report.skip(name, str(err))
                continue
            builder.add(group_of(form), Sample(Path(name).stem, text, points), sum(len(s) for s in raw))
    return report
