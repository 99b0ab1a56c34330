"""Tiny IAM-OnDB-shaped fixtures and synthetic lines written by the tests (never real data)."""
from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np


def stroke_xml(strokes) -> str:
    body = "".join(
        '<Stroke colour="black">' + "".join(f'<Point x="{x}" y="{y}" time="0.0"/>' for x, y in s) + "</Stroke>"
        for s in strokes)
    return ('<?xml version="1.0" encoding="ISO-8859-1"?>\n<WhiteboardCaptureSession>'
            '<WhiteboardDescription><SensorLocation corner="top_left"/></WhiteboardDescription>'
            f"<StrokeSet>{body}</StrokeSet></WhiteboardCaptureSession>")


def ascii_txt(csr_lines, blank_every=False) -> str:
    out = ["OCR:", "", "some ocr text", "", "CSR:", ""]
    for line in csr_lines:
        out.append(line)
        if blank_every:
            out.append("")
    return "\n".join(out) + "\n"


# a short line: two strokes, the first drawn downwards on the tablet (y grows down there)
LINE = [[(0, 0), (0, 10), (0, 20)], [(10, 0), (20, 0), (30, 5)]]


def make_iam(root: Path, forms: dict, raw_files: dict | None = None) -> tuple[Path, Path]:
    """forms: form id -> (csr lines or None for no CSR section, list of stroke lists).
    raw_files: extra stroke files {form-line: xml text}. Returns (lineStrokes, ascii) folders."""
    ls, asc = root / "lineStrokes", root / "ascii"
    for form, (csr, lines) in forms.items():
        sub = f"{form[:3]}/{form[:7]}"
        p = asc / sub / f"{form}.txt"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(ascii_txt(csr, blank_every=True) if csr is not None else "OCR:\n\nno csr here\n")
        for k, strokes in enumerate(lines, 1):
            p = ls / sub / f"{form}-{k:02d}.xml"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(stroke_xml(strokes))
    for name, text in (raw_files or {}).items():
        form = name.rsplit("-", 1)[0]
        p = ls / f"{form[:3]}/{form[:7]}" / f"{name}.xml"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return ls, asc


def tar_of(folder: Path, out: Path) -> Path:
    with tarfile.open(out, "w:gz") as tf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                tf.add(p, arcname=p.relative_to(folder.parent).as_posix())
    return out


def stroke_line(sizes: list[int], x0: float = 0.0, wave=np.sin) -> np.ndarray:
    """Offsets (N, 3) of one synthetic line: strokes of the given point counts, left to
    right, each a wave; pen_up = 1 on every stroke's last point."""
    rows = []
    for k in sizes:
        t = np.arange(k, dtype=float)
        s = np.column_stack([x0 + t, wave(t / 2), np.zeros(k)])
        s[-1, 2] = 1
        rows.append(s)
        x0 += k + 2
    a = np.concatenate(rows)
    a[1:, :2] = np.diff(a[:, :2], axis=0)
    return a


def fake_reading_file(out: Path, texts: list[str], line, seed: int) -> Path:
    """A stroke file of `line(text, rng)` fake handwriting: every text 3 times in each of
    the train, val and test splits (for readers to learn from)."""
    from genseq.strokes import Sample, write_strokes
    rng = np.random.default_rng(seed)
    splits = {s: [Sample(f"{s}{i}{j}", t, line(t, rng)) for j in range(3) for i, t in enumerate(texts)]
              for s in ("train", "val", "test")}
    write_strokes(out, splits, source="test", terms="none", units="px")
    return out


def written_pair(line, std, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """`line("cab a")` and `line("abc a")` as written lines reach a reader: offsets
    divided by the model's spread `std`."""
    rng = np.random.default_rng(seed)
    a, b = line("cab a", rng), line("abc a", rng)
    for p in (a, b):
        p[:, :2] /= np.asarray(std, np.float32)
    return a, b
