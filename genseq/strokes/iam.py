"""IAM-OnDB converter: lineStrokes + ascii (official .tar.gz archives or the
extracted folders) -> genseq stroke HDF5. See datasets/iam-ondb/README.md.

Archives are streamed (`tarfile` mode "r|*"), never extracted: memory holds
the transcriptions (a few MB) and the kept sequences, not the XML.
"""
from __future__ import annotations

import os
import re
import tarfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from tqdm import tqdm

from ..errors import GenseqError
from .build import Builder, Report
from .xmlsafe import parse_xml
from .clean import CleanOptions, Skip, clean_strokes
from .h5 import Sample

SOURCE = "IAM On-Line Handwriting Database (IAM-OnDB)"
TERMS = ("IAM-OnDB is provided for non-commercial research only; cite U.-V. Marti, M. Liwicki, "
         "H. Bunke, 'IAM-OnDB - an On-Line English Sentence Database Acquired from Handwritten "
         "Text on a Whiteboard', ICDAR 2005. Models trained on it must name the data and these terms.")
UNITS = "IAM-OnDB whiteboard tablet units, y flipped to grow upwards"

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


def group_of(form: str) -> str:
    """`a01-000u` -> `a01-000`: the text prompt shared by several writers."""
    m = _GROUP.match(form)
    return m.group(1) if m else form


def iter_files(path: str | os.PathLike, suffix: str) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """Yield (relative path, read) for each file ending in `suffix`, from a
    folder (sorted walk) or a tar archive (streamed, in archive order)."""
    path = Path(path)
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                if name.endswith(suffix):
                    full = Path(root) / name
                    yield full.relative_to(path).as_posix(), full.read_bytes
        return
    if not path.exists():
        raise GenseqError(f"{path}: no such file or folder")
    try:
        tf = tarfile.open(path, "r|*")
    except (tarfile.TarError, OSError, EOFError):
        raise GenseqError(f"{path}: neither a folder nor a tar archive (.tar.gz)") from None
    with tf:
        try:
            for member in tf:
                if member.isfile() and member.name.endswith(suffix):
                    fh = tf.extractfile(member)
                    yield member.name, fh.read
        except (tarfile.TarError, EOFError, OSError) as err:
            raise GenseqError(f"{path}: damaged archive ({err})") from None


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


def parse_stroke_xml(data: bytes) -> list[np.ndarray]:
    """IAM `<StrokeSet><Stroke><Point x= y=/>` -> list of (n, 2) float64, tablet
    coordinates (y down). Raises Skip on malformed or refused XML."""
    root = parse_xml(data)
    strokes = []
    try:
        for stroke in root.iter("Stroke"):
            strokes.append(np.array([(float(p.attrib["x"]), float(p.attrib["y"]))
                                     for p in stroke.iter("Point")], dtype=np.float64).reshape(-1, 2))
    except (KeyError, ValueError):
        raise Skip("bad point") from None
    return strokes


def _stroke_index(line_strokes: str | os.PathLike) -> dict[str, list[int]]:
    """Pass 1 (names only): form -> sorted line numbers of its stroke files."""
    index: dict[str, list[int]] = defaultdict(list)
    for name, _ in iter_files(line_strokes, ".xml"):
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
    index = _stroke_index(line_strokes)
    n_files = sum(len(v) for v in index.values())
    if not n_files:
        raise GenseqError(f"{line_strokes}: no stroke files (<form>-<line>.xml) found")
    builder = Builder(out, val_frac=opts.val_frac, test_frac=opts.test_frac, seed=opts.seed,
                      source=SOURCE, terms=TERMS, units=UNITS, resample=opts.clean.describe())
    report = builder.report
    with builder, tqdm(total=n_files, unit="line", desc="iam-ondb", disable=not opts.progress,
                       leave=False) as bar:
        for name, read in iter_files(line_strokes, ".xml"):
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
                raw = parse_stroke_xml(read())
                points = clean_strokes(raw, opts.clean, y_down=True)
            except Skip as err:
                report.skip(name, str(err))
                continue
            builder.add(group_of(form), Sample(Path(name).stem, text, points), sum(len(s) for s in raw))
    return report
