"""How a hand looks, as a few numbers: the style measure of "your own handwriting".

Five features of a writer's lines, each a median over pen-down steps or lines
of ink in one unit system (a model's data units after normalisation, so that
size and point density no longer differ by device):

- slant: the median angle from the vertical of the near-vertical pen-down
  steps, in degrees (positive leans right); the first thing a reader notices;
- aspect: width per character over letter height (the y spread between
  quartiles): narrow or wide letters;
- turning: the median turning angle between successive pen-down steps, in
  degrees: round, looping hands turn more per step than angular print;
- lifts: pen lifts per character: print lifts after nearly every letter,
  cursive once per word;
- dots: the share of strokes with at most 2 points (dots, short ticks).

`style_distance` compares two sets of lines by these features, each divided by
a spread of that feature between writers (SPREAD, measured on the writers of
the UNIPEN training split, see samples/own_hand.py): 1.0 is one typical
between-writer difference.
"""
from __future__ import annotations

import math

import numpy as np

from .clean import to_strokes
from .normalise import deskew, line_size, line_slant

FEATURES = ("slant", "aspect", "turning", "lifts", "dots")
# Spread between writers of each feature: the standard deviation over 162
# writers of the UNIPEN training split of their medians, ink normalised to the
# bundled model's (python samples/own_hand.py --spread UNIPEN_ARCHIVE).
SPREAD = {"slant": 11.4, "aspect": 0.62, "turning": 6.5, "lifts": 0.41, "dots": 0.050}


def line_features(points: np.ndarray, text: str) -> dict | None:
    """The features of one line of (N, 3) offsets (y up); None if it has no ink to measure."""
    strokes = [s for s in to_strokes(points) if len(s)]
    if not strokes or len(text.strip()) < 2:
        return None
    strokes = deskew(strokes)
    width, height = line_size(strokes, text)
    if not any(len(s) > 1 for s in strokes) or not width or not height:
        return None
    slant = line_slant(strokes)
    turns = turning_angles(strokes)
    n = len(text.strip())
    return {"slant": 0.0 if slant is None else slant,
            "aspect": width / height,
            "turning": float(np.degrees(np.median(turns))) if len(turns) else 0.0,
            "lifts": len(strokes) / n,
            "dots": float(np.mean([len(s) <= 2 for s in strokes]))}


def turning_angles(strokes: list[np.ndarray]) -> np.ndarray:
    """The absolute turning angle (radians, 0..pi) between each two successive
    pen-down steps inside a stroke, steps of length 0 left out: (A,)."""
    out = []
    for s in strokes:
        d = np.diff(np.asarray(s, dtype=np.float64)[:, :2], axis=0)
        d = d[np.hypot(d[:, 0], d[:, 1]) > 0]
        if len(d) > 1:
            a = np.arctan2(d[:, 1], d[:, 0])
            out.append(np.abs((np.diff(a) + math.pi) % (2 * math.pi) - math.pi))
    return np.concatenate(out) if out else np.zeros(0)


def hand_features(lines: list[tuple[np.ndarray, str]]) -> dict:
    """Median of each feature over a set of (points, text) lines."""
    feats = [f for f in (line_features(p, t) for p, t in lines) if f is not None]
    if not feats:
        return {}
    return {k: float(np.median([f[k] for f in feats])) for k in FEATURES}


def style_distance(a: dict, b: dict, spread: dict = SPREAD) -> float:
    """Root mean square of the feature differences in units of between-writer spread,
    between two hands as hand_features gives them (nan when they share no feature)."""
    if not (isinstance(a, dict) and isinstance(b, dict)):
        raise TypeError("style_distance compares two hand_features(lines) dicts, not the lines themselves")
    keys = [k for k in FEATURES if k in a and k in b]
    if not keys:
        return float("nan")
    return float(math.sqrt(np.mean([((a[k] - b[k]) / spread[k]) ** 2 for k in keys])))
