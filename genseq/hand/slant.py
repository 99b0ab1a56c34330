"""A writer's slant, kept apart from the rest of their hand when priming.

The bundled model learnt mostly upright hands (IAM-OnDB's training lines
lean 3.4 degrees at the median, UNIPEN's 11; genseq.strokes.normalise.
upright_shear). Primed with a hand as it was written, it wrote the steeper
hands less legibly (Spearman 0.60 between a writer's slant and the reader's
character error rate on the primed lines, 22 unseen writers;
docs/your-handwriting.md). So a style file's
lines are stood up to UPRIGHT before they prime, all by one shear, and each
written line is then leant LEAN_BACK of the way back to the writer's slant:

    k_back = k_up + LEAN_BACK · (k_writer - k_up)
    x' = x + (k_back - k_line) · y          (offsets: dx' = dx + (k_back - k_line) · dy)

where k is the shear that stands a line upright (upright_shear), k_up =
tan(UPRIGHT), k_writer the median over the writer's lines and k_line the
written line's own. A shear keeps every point's height, so letters keep their
size and the line its baseline.

A fine-tune on one writer's lines learns them stood upright the same way
(hand.own): its model file records k_writer ("writer_shear"), and the lines it
writes primed with the lines it carries lean back by the same rule
(model_lean).
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..strokes.clean import to_strokes
from ..strokes.normalise import (MAX_SHEAR, UPRIGHT_SHEAR, lean, stand_upright as stand_lines_upright,
                                 upright_shear, vertical_steps)
from .data import normalise
from .model import HandwritingConfig
from .sample import HandLine, denormalise

# UPRIGHT (genseq.strokes.normalise): 3.4 degrees, the median slant of IAM-OnDB's training lines.
# The written lines lean this share of the way back from UPRIGHT to the writer: on ten
# unseen writers of UNIPEN's validation split, 0.75 came out nearest the writer's hand of
# the shares tried (0, 0.5, 0.75, 1) and read better than primed as written
# (docs/your-handwriting.md).
LEAN_BACK = 0.75


def stand_upright(samples: list) -> tuple[list, float | None]:
    """A writer's samples (genseq.strokes.h5.Sample, levelled, data units) ->
    (the samples leant together to UPRIGHT, the shear each written line is to
    have: lean_back of the writer's); the samples unchanged and None where no
    slant can be measured."""
    points, k = stand_lines_upright([(s.points, s.text) for s in samples])
    if k is None:
        return samples, None
    return [replace(s, points=p) for s, p in zip(samples, points)], lean_back(k)


def lean_back(k: float) -> float:
    """The shear written lines get for a writer whose lines stand upright under
    the shear k: LEAN_BACK of the way back from UPRIGHT (in shear)."""
    return UPRIGHT_SHEAR + LEAN_BACK * (k - UPRIGHT_SHEAR)


def model_lean(meta: dict) -> float | None:
    """The shear the lines of a model fine-tuned on one writer's lines stood
    upright get (lean_back of the writer's shear its file records,
    "writer_shear"); None for a model that records none."""
    k = meta.get("writer_shear")
    if isinstance(k, bool) or not isinstance(k, (int, float)):
        return None
    try:
        k = float(k)  # an integer beyond a float raises OverflowError
    except OverflowError:
        return None
    return lean_back(k) if math.isfinite(k) and abs(k) <= MAX_SHEAR else None


# A written line is leant from its own slant when that rests on at least MIN_STEPS near-vertical
# steps (the phrases of docs/your-handwriting.md: 100 or more). A short line ("a", "-") can read
# 40 degrees off; it is leant as if it stood at UPRIGHT.
MIN_STEPS = 20


def lean_to(points: np.ndarray, k: float) -> np.ndarray:
    """(N, 3) data-unit offsets of one level line written primed upright -> the
    line leant so that its upright_shear is `k` (see MIN_STEPS). (A shear moves
    the least-squares line through a short line's points, so the line is not
    levelled again first: the model writes level lines.)"""
    strokes = to_strokes(points)
    own = upright_shear(strokes)
    if own is None or vertical_steps(strokes, own) < MIN_STEPS:
        own = UPRIGHT_SHEAR
    return lean(points, k - own)


def lean_line(line: HandLine, k: float, config: HandwritingConfig) -> HandLine:
    """A written line (normalised points) leant to the shear `k` (stand_upright's)."""
    if len(line.points) < 2:
        return line
    pts = lean_to(denormalise(line.points, config.norm_mean, config.norm_std), k)
    return replace(line, points=normalise(pts, config))
