"""Bring a writer's ink to a model's own size and point density.

A tablet or a capture page records a different number of points per
character than the ink a model was trained on (IAM-OnDB as `data iam-ondb
--every 2` writes it: about 11 points per character; a capture page or a
UNIPEN tablet: 30-40), in other units and at another letter size. A model
primed with, or fine-tuned on, such ink sees a pen that moves three times
slower than any it knows. `normalise_lines` maps all lines of one writer
together, so their relative sizes and speeds stay the writer's own:

1. baseline: each line is rotated so that a least-squares line through its
   points is horizontal (at most ±20°);
2. size: one scale for the writer, the geometric mean of two: the target's
   letter height over the median of the writer's (the letter height of a
   line being the spread of its y between quartiles, an x-height that
   ascenders and descenders barely move) and the target's width per
   character over the writer's. Height alone brings a narrow hand to the
   model's letter height but leaves its letters a third as wide as any the
   model knows, and primed with such ink the model garbled one held-out
   writer's lines (4x the default style's character error rate; 0.7x with
   the mean), for lines slightly farther from the writer's style
   (docs/your-handwriting.md);
3. density: each stroke is resampled at a fixed step of pen time where the
   points carry times, else of arc length, so that the writer's ink has the
   target's points per character.

No torch here: the importers and `write --style-file` use it.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .clean import Skip, to_offsets, to_strokes

MAX_DESKEW = math.radians(20.0)
MAX_POINTS_PER_CHAR = 1000.0  # a target beyond this is not a model's ink (and would fill the memory)


@dataclass(frozen=True)
class InkTarget:
    """What a model's training ink looks like, as medians over its lines:
    points per character, width per character and the y spread between
    quartiles, in the model's data units (`ink_target` measures a file)."""

    points_per_char: float
    width_per_char: float
    height: float

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d) -> "InkTarget | None":
        try:
            t = cls(float(d["points_per_char"]), float(d["width_per_char"]), float(d["height"]))
        except (TypeError, KeyError, ValueError, OverflowError):
            return None
        ok = all(math.isfinite(v) and v > 0 for v in asdict(t).values()) and t.points_per_char <= MAX_POINTS_PER_CHAR
        return t if ok else None

    def describe(self) -> str:
        return (f"normalised to {self.points_per_char:.4g} points per character, {self.width_per_char:.4g} "
                f"units of width per character and {self.height:.4g} of letter height, baseline levelled")


# Measured by `ink_target` on `data iam-ondb --every 2 --keep-crossed-out` (all 10,092 training lines):
# the ink of the bundled handwriting model.
IAM_UNITS = "IAM-OnDB whiteboard tablet units, y flipped to grow upwards"  # strokes.iam.UNITS
IAM_TARGET = InkTarget(points_per_char=11.28, width_per_char=186.1, height=102.4)


@dataclass
class RawLine:
    """One written line as recorded: absolute strokes (n, 2), y up, and per
    stroke the pen times (n,) or None."""

    text: str
    strokes: list
    times: list | None = None


def deskew(strokes: list[np.ndarray]) -> list[np.ndarray]:
    """Rotate a line so that the least-squares line through its points is level."""
    xy = np.concatenate(strokes)
    if len(xy) < 3 or np.ptp(xy[:, 0]) <= 0:
        return strokes
    x, y = xy[:, 0] - xy[:, 0].mean(), xy[:, 1] - xy[:, 1].mean()
    angle = float(np.clip(math.atan2((x * y).sum(), (x * x).sum()), -MAX_DESKEW, MAX_DESKEW))
    c, s = math.cos(-angle), math.sin(-angle)
    R = np.array([[c, -s], [s, c]])
    centre = xy.mean(axis=0)
    return [(a - centre) @ R.T + centre for a in strokes]


def _steps(strokes: list[np.ndarray]) -> np.ndarray | None:
    """The pen-down steps (S, 2) of a line's absolute strokes; None without any."""
    steps = [np.diff(np.asarray(a, dtype=np.float64)[:, :2], axis=0) for a in strokes if len(a) > 1]
    return np.concatenate(steps) if steps else None


def _step_slant(d: np.ndarray) -> float | None:
    """The median angle from the vertical (degrees, positive leans right, y up)
    of the near-vertical steps of d (S, 2); None where there are none."""
    vert = d[np.abs(d[:, 1]) > np.abs(d[:, 0])]  # steps of length 0 are not near-vertical
    if not len(vert):
        return None
    return float(np.median(np.degrees(np.arctan2(vert[:, 0] * np.sign(vert[:, 1]), np.abs(vert[:, 1])))))


def line_slant(strokes: list[np.ndarray]) -> float | None:
    """The slant of one levelled line of absolute strokes (y up): the median angle
    from the vertical, in degrees (positive leans right), of its near-vertical
    pen-down steps; None where it has none."""
    d = _steps(strokes)
    return None if d is None else _step_slant(d)


def lean(points: np.ndarray, k: float) -> np.ndarray:
    """(N, 3) offsets (y up) sheared by x += k·y: every stroke leans right by k
    units per unit of height more (left for k < 0); pen states unchanged."""
    out = np.array(points, dtype=np.float32, copy=True)
    out[:, 0] += np.float32(k) * out[:, 1]
    return out


MAX_SHEAR = 2.0  # a line that would need more (63 degrees) to stand upright is not a slant to measure


def upright_shear(strokes: list[np.ndarray], tol: float = 0.1, rounds: int = 10) -> float | None:
    """The shear k that stands a levelled line of absolute strokes (y up)
    upright: fixed-point steps k += tan(line_slant of the strokes under
    x -= k·y) until that slant is within `tol` degrees of 0 (the last step
    taken too), at most `rounds` of them; None where no slant can be measured
    or |k| > MAX_SHEAR, or where under k fewer than MIN_VERTICAL of its steps
    stand near the vertical (a scribble, or a false rest on a very steep hand).

    line_slant counts only steps within 45 degrees of the vertical, so on a
    steep hand it reads less than the hand leans and a shear by it stands the
    hand only part of the way up. Near upright it reads true, and so k moves
    one for one with a shear: a line leant by c has upright_shear k + c."""
    d = _steps(strokes)
    if d is None:
        return None
    k = _settle(d, 0.0, tol, rounds)
    if k is None or _vertical(d, k) < MIN_VERTICAL:
        # A hand steeper than about 45 degrees has few near-vertical steps to start from, and
        # the steps can settle where almost none are: start again from the shear that stands
        # the most steps near the vertical.
        best = max(np.arange(-MAX_SHEAR, MAX_SHEAR + 1e-9, 0.1), key=lambda c: _vertical(d, c))
        k = _settle(d, float(best), tol, rounds)
        if k is None or _vertical(d, k) < MIN_VERTICAL:
            return None
    return k if abs(k) <= MAX_SHEAR else None


MIN_VERTICAL = 0.2  # upright, a line of writing has at least this share of its steps near the vertical


def _vertical(d: np.ndarray, k: float) -> float:
    """The share of the steps d (S, 2) within 45 degrees of the vertical under x -= k·y."""
    x = d[:, 0] - k * d[:, 1]
    return float(np.mean(np.abs(d[:, 1]) > np.abs(x)))


def vertical_steps(strokes: list[np.ndarray], k: float) -> int:
    """How many pen-down steps of a line stand within 45 degrees of the vertical under
    x -= k·y: what its upright_shear k rests on."""
    d = _steps(strokes)
    return 0 if d is None else int(round(_vertical(d, k) * len(d)))


def _settle(d: np.ndarray, k: float, tol: float, rounds: int) -> float | None:
    """upright_shear's fixed-point steps from k."""
    for _ in range(rounds):
        a = _step_slant(d - k * d[:, 1:2] * [1.0, 0.0])  # the steps under x -= k·y
        if a is None:
            return None
        k += math.tan(math.radians(a))
        if abs(a) < tol:
            break
    return k


def writer_shear(lines: list[tuple[np.ndarray, str]]) -> float | None:
    """The median upright_shear over a writer's levelled (N, 3) offset lines of
    two characters or more (normalise_lines levels them); None where none can
    be measured."""
    ks = [upright_shear(to_strokes(p)) for p, t in lines if len(t.strip()) >= 2 and len(p) > 1]
    ks = [k for k in ks if k is not None]
    return float(np.median(ks)) if ks else None


# The slant a writer's lines are stood to (stand_upright): the median upright_shear of
# IAM-OnDB's training lines, in degrees (UNIPEN's: 11). The bundled model learnt mostly
# upright hands and writes them most legibly (genseq.hand.slant).
UPRIGHT = 3.4
UPRIGHT_SHEAR = math.tan(math.radians(UPRIGHT))  # the same slant as a shear x += k·y


def stand_upright(lines: list[tuple[np.ndarray, str]]) -> tuple[list[np.ndarray], float | None]:
    """A writer's levelled (N, 3) offset lines and their texts -> (the lines
    sheared together, by one shear, so that the writer's slant (writer_shear)
    is UPRIGHT; the writer's shear k); the lines unchanged and None where no
    slant can be measured."""
    k = writer_shear(lines)
    if k is None:
        return [p for p, _ in lines], None
    return [stand_from(p, k) for p, _ in lines], k


def stand_from(points: np.ndarray, k: float) -> np.ndarray:
    """(N, 3) offsets of a writer whose slant is the shear k, stood at UPRIGHT:
    x += (tan(UPRIGHT) - k)·y, which keeps every point's height."""
    return lean(points, UPRIGHT_SHEAR - k)


def line_size(strokes: list[np.ndarray], text: str) -> tuple[float | None, float | None]:
    """(width per character, y spread between quartiles) of one levelled line;
    None where it cannot be measured (one character, no extent)."""
    xy = np.concatenate(strokes)
    n = len(text.strip())
    width = float(np.ptp(xy[:, 0])) / n if n >= 2 else None
    q1, q3 = np.percentile(xy[:, 1], [25, 75])
    height = float(q3 - q1) if n >= 2 else None
    return (width if width else None), (height if height else None)


def writer_scale(lines: list[tuple[list[np.ndarray], str]], target: InkTarget) -> float:
    """One scale for all of a writer's (levelled strokes, text) lines: the
    geometric mean of the target's letter height over the median of theirs and
    the target's width per character over theirs (see module docstring)."""
    sizes = [line_size(s, t) for s, t in lines]
    heights = [h for _, h in sizes if h]
    widths = [w for w, _ in sizes if w]
    by_height = target.height / float(np.median(heights)) if heights else None
    by_width = target.width_per_char / float(np.median(widths)) if widths else None
    if by_height and by_width:
        return math.sqrt(by_height * by_width)
    if by_height or by_width:  # one of them cannot be measured (say a flat scribble: no height)
        return by_height or by_width
    ext = [max(np.ptp(np.concatenate(s), axis=0).max(), 1e-9) for s, _ in lines]  # single characters
    return target.height * 2 / float(np.median(ext))


def _resample(a: np.ndarray, key: np.ndarray, step: float) -> np.ndarray:
    """Points of one stroke (n, 2) at every `step` of `key` (n,) (time or arc
    length, non-decreasing), the last point always kept."""
    span = float(key[-1] - key[0])
    if len(a) <= 1 or span <= 0:  # a dot, or points with no time between them: its ends
        return a[:1] if len(a) <= 1 or np.all(a[0] == a[-1]) else a[[0, -1]]
    at = np.arange(key[0], key[-1], step)
    at = np.append(at, key[-1]) if at[-1] < key[-1] else at
    k = np.maximum.accumulate(key)
    # np.interp needs increasing keys: repeated times keep their first point's place
    k = k + np.arange(len(k)) * 1e-9 * max(span, 1.0)
    return np.stack([np.interp(at, k, a[:, j]) for j in range(2)], 1)


def normalise_lines(lines: list[RawLine], target: InkTarget) -> list[np.ndarray]:
    """All lines of one writer -> their (N, 3) offsets in the target's units and density."""
    if not lines:
        return []
    levelled = []
    with np.errstate(all="ignore"):  # ink too small or too large to size is refused below, not warned about
        for ln in lines:
            strokes = [np.asarray(s, dtype=np.float64)[:, :2] for s in ln.strokes if len(s)]
            if not strokes:
                raise Skip("no points")
            levelled.append(deskew(strokes))
        scale = writer_scale([(s, ln.text) for s, ln in zip(levelled, lines)], target)
        scaled = [[a * scale for a in s] for s in levelled]
    if not (math.isfinite(scale) and scale > 0) or not all(np.isfinite(a).all() for s in scaled for a in s):
        raise Skip("ink too small or too large to size")
    chars = sum(len(ln.text) for ln in lines)
    n_strokes = sum(len(s) for s in scaled)
    wanted = max(target.points_per_char * chars - n_strokes, 1.0)  # each stroke also keeps its last point
    timed = all(ln.times is not None and len(ln.times) == len(ln.strokes) for ln in lines)
    keys = []
    for ln, strokes in zip(lines, scaled):
        if timed:
            ts = [np.asarray(t, dtype=np.float64) for t, s in zip(ln.times, ln.strokes) if len(s)]
            keys.append([t - t[0] for t in ts])
        else:
            keys.append([np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(a, axis=0).T))]) for a in strokes])
    total = sum(float(k[-1]) for ks in keys for k in ks)
    step = total / wanted if total > 0 else 1.0
    out = []
    for strokes, ks in zip(scaled, keys):
        res = [_resample(a, k, step) for a, k in zip(strokes, ks)]
        out.append(to_offsets([r for r in res if len(r)]))
    return out


def ink_target(split, max_lines: int = 2000) -> InkTarget:
    """Measure a stroke file's split (genseq.strokes.h5.StrokeSplit): points per
    character over the whole split, sizes as medians over up to `max_lines`
    lines spread evenly over it."""
    from .split import spread
    chars = sum(len(t) for t in split.texts)
    if not chars:
        raise Skip("no text")
    widths, heights = [], []
    for i in spread(np.arange(len(split)), max_lines):
        s = split[int(i)]
        if len(s.points) < 3:
            continue
        w, h = line_size(deskew(to_strokes(s.points)), s.text)
        if w:
            widths.append(w)
        if h:
            heights.append(h)
    if not widths or not heights:
        raise Skip("no line to measure")
    return InkTarget(float(split.lengths.sum()) / chars, float(np.median(widths)), float(np.median(heights)))


def model_ink(meta: dict) -> InkTarget | None:
    """The ink a model was trained on, from its file's meta: recorded by
    `train handwriting` ("ink"), or IAM-OnDB's for a model trained on
    `data iam-ondb --every 2` before models recorded it; None if unknown."""
    t = InkTarget.from_dict(meta.get("ink")) if isinstance(meta.get("ink"), dict) else None
    if t is None and meta.get("units") == IAM_UNITS and "every 2th" in str(meta.get("resample", "")):
        t = IAM_TARGET
    return t
