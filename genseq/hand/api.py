"""`genseq write`: text in, pages of handwriting (SVG) out.

The text is cleaned (tabs to spaces, other control characters removed,
unknown characters an error unless dropped or replaced), wrapped into lines of
at most `max_chars` characters, written by the synthesis network as batches of
lines that share one style (the same priming, Graves 2013 section 5.5), and
laid out on pages by the renderer.
"""
from __future__ import annotations

import os
import textwrap
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..checkpoint import bundled_path, load_model
from ..errors import GenseqError
from ..reader import load_recognizer
from ..render import PageOptions, render_pages
from .data import normalise
from .model import HandwritingConfig, HandwritingModel
from .sample import (HandLine, HandSampleOptions, Progress, denormalise, progress_keys, sample_synthesis,
                     sample_unconditional)

if TYPE_CHECKING:
    from ..strokes.build import Report

DEFAULT_MODEL = "handwriting.pt"
STYLES = "styles.jsonl"
MAX_TEXT = 20_000   # characters per call; see WriteOptions.max_text
BATCH_LINES = 32    # lines written together (with one candidate each)
BATCH_SEQUENCES = 64  # with several candidates: at most this many drawn together


@dataclass(frozen=True)
class WriteOptions:
    bias: float | None = None      # Graves 2013 section 5.4: larger is neater, 0 is the raw model;
                                   # None: DEFAULT_BIAS, or OWN_HAND_BIAS in your hand (style_bias)
    char_bias: tuple[str, float] | None = None  # (characters, b): bias b while the window is on one of them
    seed: int = 0                  # same seed, same handwriting
    style: int | None = None       # a style (priming sample); None: the seed's bundled one, a fine-tune's first
    style_file: Path | None = None # prime with your own line(s) (JSON Lines or .inkml, see datasets/)
    style_lines: int = 1           # how many of the style file's lines prime, side by side (prime_order)
    upright: bool = True           # a style file's lines prime stood upright, the lines lean back (hand.slant)
    unprimed: bool = False         # no priming at all: every line in a hand of its own
    max_chars: int = 40            # wrap lines at this many characters (IAM-OnDB lines: 95% <= 41)
    unknown: str = "error"         # characters outside the alphabet: error | drop | replace
    replacement: str = " "         # what `unknown="replace"` puts instead
    max_text: int = MAX_TEXT       # refuse longer texts (minutes of CPU); raise it if you mean it
    candidates: int = 8            # write each line this many times, keep the one the reader reads best
    by_word: bool = True           # ... choosing at every word's end (words.py), not only whole lines
    cross_check: float = 1.0       # nats per crossing of x, X, t, f, +, # a candidate lacks (shape.py); 0: off
    margin_check: float | None = None  # nats per nat a digit's or capital's margin falls short (choose.margin_penalty);
                                   # 0: off; None: MARGIN_CHECK, or 0 in your hand (style_margin)
    bar_check: float | None = None  # nats per capital E without its top bar or t crossed only on the left (hand.bars);
                                   # 0: off; None: BAR_CHECK, or 0 in your hand (style_bars)
    word_gap: float | None = None  # words at least this many average character widths apart (hand.spacing);
                                   # 0: as drawn; None: WORD_GAP, or 0 in your hand (style_word_gap)
    recognizer: Path | None = None # the reader (genseq train recognizer); None: the bundled one
    picture_reader: Path | None = None  # a reader of pictures (train recognizer --input image) that also
                                   # reads each candidate's newest word (choose.newest_word_scores)
    page: PageOptions = field(default_factory=lambda: PageOptions(background="white"))

    def check(self) -> None:
        if self.bias is not None and not 0 <= self.bias <= 10:
            raise GenseqError("--bias must be between 0 and 10")
        if self.char_bias is not None and not 0 <= self.char_bias[1] <= 10:
            raise GenseqError("--char-bias: the bias must be between 0 and 10")
        if not 0 <= self.seed < 2**63:
            raise GenseqError("--seed must be between 0 and 2**63 - 1")
        if not 5 <= self.max_chars <= 200:
            raise GenseqError("--max-chars must be between 5 and 200")
        if self.unknown not in ("error", "drop", "replace"):
            raise GenseqError("--unknown must be error, drop or replace")
        if not 0 <= self.cross_check <= 10:
            raise GenseqError("--cross-check must be between 0 and 10 nats")
        if self.margin_check is not None and not 0 <= self.margin_check <= 10:
            raise GenseqError("--margin-check must be between 0 and 10")
        if self.bar_check is not None and not 0 <= self.bar_check <= 10:
            raise GenseqError("--bar-check must be between 0 and 10 nats")
        if self.word_gap is not None and not 0 <= self.word_gap <= 5:
            raise GenseqError("--word-gap must be between 0 and 5 character widths")
        if not 1 <= self.candidates <= 16:
            raise GenseqError("--candidates must be between 1 and 16")
        if not self.by_word and self.candidates == 1:
            raise GenseqError("--by-line chooses among candidates: give --candidates 2 or more")
        if self.recognizer is not None and self.candidates == 1:
            raise GenseqError("--recognizer chooses among candidates: give --candidates 2 or more")
        if self.picture_reader is not None and self.candidates == 1:
            raise GenseqError("--picture-reader chooses among candidates: give --candidates 2 or more")
        if not 1 <= self.style_lines <= 5:
            raise GenseqError("--style-lines must be between 1 and 5")
        if sum((self.style is not None, self.style_file is not None, self.unprimed)) > 1:
            raise GenseqError("give one of --style, --style-file and --no-style")


@dataclass
class HandModel:
    model: HandwritingModel
    meta: dict

    @property
    def config(self) -> HandwritingConfig:
        return self.model.config


def load_hand_model(path: str | os.PathLike | None = None, device: str = "cpu") -> HandModel:
    """Load a handwriting checkpoint (`None` or "default": the bundled model)."""
    model, ckpt = load_model(path, "handwriting", DEFAULT_MODEL,
                             lambda ck: HandwritingModel(HandwritingConfig.from_dict(ck["config"])))
    return HandModel(model.to(device).eval(), ckpt["meta"])


def clean_text(text: str, alphabet: str, unknown: str = "error", replacement: str = " ") -> str:
    """Normalise line breaks and spaces, drop control characters, handle unknown ones."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    text = "".join(ch for ch in text if ch == "\n" or unicodedata.category(ch)[0] != "C")
    allowed = set(alphabet) | {"\n"}
    bad = sorted({ch for ch in text if ch not in allowed})
    if bad:
        if unknown == "error":
            shown = " ".join(repr(c) for c in bad[:30])
            raise GenseqError(f"the model cannot write {len(bad)} character(s): {shown} "
                              "(use --unknown drop or --unknown replace)")
        if unknown == "replace" and replacement and not set(replacement) <= allowed:
            raise GenseqError(f"the replacement {replacement!r} is not in the model's alphabet either")
        text = "".join(ch if ch in allowed else (replacement if unknown == "replace" else "") for ch in text)
    return text


def wrap_lines(text: str, max_chars: int) -> list[str]:
    """Paragraphs split at newlines, each wrapped at word boundaries; '' marks a blank line."""
    lines: list[str] = []
    for para in text.split("\n"):
        para = " ".join(para.split())
        lines.extend(textwrap.wrap(para, max_chars, break_long_words=True, break_on_hyphens=False) or [""])
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return lines


def bundled_styles() -> list:
    """The bundled priming samples (lines the bundled model wrote itself); [] if none ship."""
    from ..strokes.jsonl import read_jsonl
    try:
        return read_jsonl(bundled_path(STYLES))
    except GenseqError:
        return []


MAX_MODEL_STYLES = (8, 200, 2_500)  # lines, characters per line, points per line
# ... and a carried line holds at most this many points per character (a written line stops
# at 40: sample.py) with offsets of at most MAX_STYLE_STEP data units: priming runs the
# network over every point, so a small file must not carry hours of it.
MAX_STYLE_POINTS_PER_CHAR = 40
MAX_STYLE_STEP = 1e5
# A --style-file is read as far as its first 1,000 usable lines, and lines longer than a
# model style are left out: priming uses at most 5 lines of about 40 characters.
STYLE_FILE_LIMITS = {"max_lines": 1000, "max_chars": MAX_MODEL_STYLES[1]}


def model_styles(hm: HandModel) -> list:
    """The styles a model file carries (a fine-tune on one writer carries a few of
    their lines, in data units: hand/own.py), as Samples; [] if none or malformed."""
    from ..strokes.h5 import Sample
    styles, out = hm.meta.get("styles"), []
    if not isinstance(styles, list) or len(styles) > MAX_MODEL_STYLES[0]:
        return []
    for i, st in enumerate(styles):
        try:
            text, pts = st["text"], np.asarray(st["points"], dtype=np.float32)
        except (TypeError, KeyError, ValueError):
            return []
        if (not isinstance(text, str) or not 0 < len(text) <= MAX_MODEL_STYLES[1] or pts.ndim != 2
                or pts.shape[1] != 3 or not 1 < len(pts) <= MAX_MODEL_STYLES[2]
                or len(pts) > MAX_STYLE_POINTS_PER_CHAR * len(text)
                or not np.isfinite(pts).all() or np.abs(pts).max() > MAX_STYLE_STEP):
            return []
        out.append(Sample(f"model-style-{i}", text, pts))
    return out


def styles_of(hm: HandModel) -> list:
    """The styles `--style N` chooses from: the model file's own, else the bundled ones."""
    return model_styles(hm) or bundled_styles()


@dataclass(frozen=True, eq=False)
class Style:
    """A priming sample as the model sees it, and the slant the written lines get."""

    points: np.ndarray  # (N, 3) normalised offsets
    text: str
    shear: float | None = None  # the upright_shear written lines get (hand.slant); None: lines as written
    own: bool = False  # a user's ink: a style file, or the lines a fine-tuned model carries

    @property
    def prime(self) -> tuple[np.ndarray, str]:
        return self.points, self.text


# Judged blind beside 0.75, the 60 everyday lines came out better in 218 lines and worse in 155
# (seeds 1-7 and 21-23); 2.5 gained nothing more: docs/writing.md, "Styles and bias".
DEFAULT_BIAS = 1.5
# A user's ink keeps more of its shapes at a lower bias: at 1.0 five unseen writers' fine-tuned
# lines had every word legible in 44 of 50 phrases against 38 at 0.75, and at 1.3 the hands drifted
# towards the model's own (style distance up 0.02-0.03): docs/your-handwriting.md.
OWN_HAND_BIAS = 1.0
# The margin check (choose.margin_penalty) wrote 48 lines better and 32 worse by eye in the bundled
# styles, and 4 better and 7 worse in five unseen writers' hands, whose digits the reader knows
# less well: docs/writing.md.
MARGIN_CHECK = 1.0
# The model's own gaps between words are 1.3 average character widths (median; 10% under 0.96, on
# the 60 everyday lines); the narrowest ran digits and words together: docs/writing.md.
WORD_GAP = 1.2
# Nats a finished line loses when its closing ! or ? has no dot (lines.dotless_end), in the bundled
# styles: first drawn, 5 of 48 such marks had none, and 4 of 48 with the reader choosing among 8.
DOT_CHECK = 5.0
# Nats a candidate loses per capital E without its top bar (like a t) and per t crossed only on the
# left of its stem (like an l), in the bundled styles (hand.bars): judged blind, the E check changed 67
# of 900 everyday lines, 40 better and 24 worse; the t check then 81 of 480 lines, 59 better and 19
# worse (docs/writing.md).
BAR_CHECK = 3.0


def by_hand(given: float | None, default: float, own: float, style: Style | None) -> float:
    """`given` when set, else `own` in a user's hand (a style file, or the lines a
    fine-tuned model carries) and `default` for the rest."""
    if given is not None:
        return given
    return own if style is not None and style.own else default


def style_margin(options: WriteOptions, style: Style | None) -> float:
    """The margin check lines are chosen with: MARGIN_CHECK, 0 in a user's hand."""
    return by_hand(options.margin_check, MARGIN_CHECK, 0.0, style)


def style_bars(options: WriteOptions, style: Style | None) -> float:
    """The bar check lines are chosen with: BAR_CHECK, 0 in a user's hand."""
    return by_hand(options.bar_check, BAR_CHECK, 0.0, style)


def style_word_gap(options: WriteOptions, style: Style | None) -> float:
    """The least gap between words (hand.spacing): WORD_GAP, 0 (as drawn) in a user's hand."""
    return by_hand(options.word_gap, WORD_GAP, 0.0, style)


def style_bias(options: WriteOptions, style: Style | None) -> float:
    """The bias lines are written with: DEFAULT_BIAS, OWN_HAND_BIAS in a user's hand."""
    return by_hand(options.bias, DEFAULT_BIAS, OWN_HAND_BIAS, style)


def load_style(hm: HandModel, options: WriteOptions, reader=None,
               left_out: Report | None = None) -> Style | None:
    """The priming sample, normalised as the model sees it.

    All lines of a call are primed with it, so they share one hand (Graves 2013
    section 5.5). Without --style or --style-file: the first of the lines a
    fine-tuned model carries, else the bundled style the seed picks; the lines
    of a model that records its writer's slant lean back to it
    (hand.slant.model_lean). A style file's lines are stood upright (hand.slant) and chosen by prime_order, read
    by `reader` (None: the one `options` names, loaded if needed); the lines of
    a style file that cannot prime are counted in `left_out` when one is given.
    """
    from ..strokes.normalise import model_ink
    from ..strokes.ownink import read_ink
    from .slant import model_lean, stand_upright
    config = hm.config
    if options.unprimed:
        return None
    shear = None
    mine = options.style_file is not None  # the user's ink primes (or a fine-tune's own lines, below)
    if options.style_file is not None:
        path = Path(options.style_file)
        if not path.is_file():
            raise GenseqError(f"{path}: not a regular file, expected a style file (.jsonl or .inkml)"
                              if path.exists() else f"no such style file: {path}")
        target = model_ink(hm.meta)
        if target is not None:
            # The user's ink at the model's own size and level baseline, a little sparser (PRIME_DENSITY).
            target = replace(target, points_per_char=target.points_per_char * PRIME_DENSITY)
            scale = float(hm.meta.get("scale", 1.0))
            samples = read_ink(path, target=target, report=left_out, **STYLE_FILE_LIMITS)
            if options.upright:
                samples, shear = stand_upright(samples)
            sample = priming_sample(samples, config.alphabet,
                                    options.style_lines, target.width_per_char,
                                    prime_legibility(config, reader, options.recognizer, scale))
        else:
            # A model that records no ink: match the spread of the pen offsets.
            sample = max(read_ink(path, report=left_out, **STYLE_FILE_LIMITS), key=lambda s: len(s.points))
            spread = float(np.std(sample.points[:, :2], axis=0).mean())
            if not np.isfinite(spread) or spread <= 0:
                raise GenseqError("the style sample has no usable strokes")
            scale = float(np.mean(config.norm_std)) / spread
    else:
        own = model_styles(hm)
        mine = bool(own)
        styles = own or bundled_styles()
        if not styles:
            if options.style is not None:
                raise GenseqError("this copy of genseq ships no bundled styles")
            return None
        # A fine-tune's own lines: the first (nearest PRIME_CHARS long) primes best, so it is the
        # default whatever the seed; the bundled styles take turns with the seed.
        default = 0 if own else options.seed % len(styles)
        index = default if options.style is None else options.style
        if not 0 <= index < len(styles):
            raise GenseqError(f"--style must be between 0 and {len(styles) - 1}")
        sample, scale = styles[index], 1.0  # already in the model's units
        shear = model_lean(hm.meta)  # a fine-tune on one writer's lines stood upright: lean back to their slant
        if options.style is None and not set(sample.text) <= set(config.alphabet):
            return None  # a model of another alphabet: no default style
    bad = sorted(set(sample.text) - set(config.alphabet))
    if bad:
        raise GenseqError(f"the style sample's text has characters the model cannot write: {''.join(bad)!r}")
    if len(sample.points) > MAX_MODEL_STYLES[2] * options.style_lines:
        raise GenseqError(f"the style sample has {len(sample.points):,} points; a line may have at most "
                          f"{MAX_MODEL_STYLES[2]:,} in the model's units")
    return Style(normalise(sample.points, config, scale), sample.text, shear, own=mine)


PRIME_CHARS = 40  # priming lines nearest this length are used: the length the model writes best
PRIME_MAX = 60    # ... of at most this many characters,
PRIME_POOL = 40   # ... of which at most this many nearest are read (prime_order),
PRIME_PLAIN = -0.3  # ... and those read at this log p(text | ink) per character or better come first,
PRIME_PROSE = 0.5   # ... running text first among them: at least this share of lowercase letters
# A user's priming ink is resampled to this share of the model's points per character. The model
# writes on at about the pace of its prime, and primed with ink at its own density it wrote more
# points per character than in its default style; measured in docs/your-handwriting.md.
PRIME_DENSITY = 0.9


def prime_legibility(config: HandwritingConfig, reader=None, recognizer: Path | None = None,
                     scale: float = 1.0) -> Callable[[list], np.ndarray]:
    """legible(lines) for prime_order: choose.legibility of Samples in the model's
    data units, read by `reader` (None: `recognizer`, None the bundled one, loaded
    at the first call); all -inf (no preference) when no reader can be loaded."""
    from .choose import legibility
    norm = (config.norm_mean, config.norm_std)
    loaded = [reader]

    def legible(lines: list) -> np.ndarray:
        if loaded[0] is None:
            try:
                loaded[0] = load_recognizer(recognizer)
            except GenseqError:
                return np.full(len(lines), -np.inf)
        return legibility(loaded[0], [normalise(s.points, config, scale) for s in lines],
                          [s.text for s in lines], norm)
    return legible


def prose(text: str) -> bool:
    """Whether a line reads as running text: at least PRIME_PROSE of its non-space characters
    are lowercase letters (not a line of capitals, digits or symbols)."""
    ink = [c for c in text if not c.isspace()]
    return bool(ink) and sum(c.islower() for c in ink) >= PRIME_PROSE * len(ink)


def prime_order(samples: list, alphabet: str, legible: Callable[[list], np.ndarray] | None = None) -> list:
    """The lines a writer's sample primes with, best first. Among the lines the
    model can write (all lines if none can), ordered by how near PRIME_CHARS
    long they are: with `legible(lines)` (log p(text | ink) per character,
    choose.legibility), the PRIME_POOL nearest of at most PRIME_MAX characters
    are read, and those read at PRIME_PLAIN or better come first (running
    text before lines of capitals, digits or symbols: `prose`), then the
    others, most legible first, then the rest by length. A scrawled line
    primes the model into scrawl, and so does a long one, and a line of
    capitals or symbols into shapes that are not running text: measured in
    docs/your-handwriting.md."""
    ok = [s for s in samples if set(s.text) <= set(alphabet)] or samples
    near = sorted(ok, key=lambda s: (abs(len(s.text) - PRIME_CHARS), -len(s.text), s.id))
    if legible is None:
        return near
    pool = [s for s in near if len(s.text) <= PRIME_MAX][:PRIME_POOL]
    rest = [s for s in near if all(s is not p for p in pool)]
    if len(pool) > 1:
        score = np.nan_to_num(np.asarray(legible(pool), dtype=np.float64), nan=-np.inf)
        plain = sorted((s for s, v in zip(pool, score) if v >= PRIME_PLAIN), key=lambda s: not prose(s.text))
        pool = plain + [pool[i] for i in np.argsort(-score, kind="stable") if score[i] < PRIME_PLAIN]  # ties: by length
    return pool + rest


def priming_sample(samples: list, alphabet: str, n: int, space: float,
                   legible: Callable[[list], np.ndarray] | None = None):
    """The first `n` lines of prime_order side by side on one baseline, a
    `space` (data units) apart, as one Sample."""
    from ..strokes.clean import to_offsets, to_strokes
    from ..strokes.h5 import Sample
    chosen = prime_order(samples, alphabet, legible)[:n]
    if len(chosen) == 1:
        return chosen[0]
    strokes, texts, right, base = [], [], None, None
    for s in chosen:
        line = to_strokes(s.points)
        xy = np.concatenate(line)
        y_mid = float(np.median(xy[:, 1]))
        dx = 0.0 if right is None else right + space - float(xy[:, 0].min())
        dy = 0.0 if base is None else base - y_mid
        base = y_mid + dy
        strokes += [a + [dx, dy] for a in line]
        right = float(xy[:, 0].max()) + dx
        texts.append(s.text)
    return Sample(chosen[0].id, " ".join(texts), to_offsets(strokes))


def write_lines(lines: list[str], hm: HandModel, options: WriteOptions, progress: Progress | None = None,
                on_line: Callable[[int, HandLine], None] | None = None,
                left_out: Report | None = None) -> list[HandLine | None]:
    """Write each non-empty line (batches of BATCH_LINES lines, or of BATCH_SEQUENCES
    candidates); None for blank lines.

    For a page that shows lines as they grow: progress({i: points so far}) for
    the lines i of the batch being written (sample.Progress), on_line(i, line)
    once a line is final (primed with a style file, progress shows a line upright
    and on_line leant: hand.slant). Neither changes what is written. `left_out`
    counts the lines of a style file that cannot prime (load_style)."""
    from .choose import choose, scorer
    from .slant import lean_line
    from .spacing import widen_word_gaps
    bad = "".join(sorted(set(options.char_bias[0]) - set(hm.config.alphabet))) if options.char_bias else ""
    if bad:
        raise GenseqError(f"--char-bias: the model cannot write {bad!r}")
    C = options.candidates
    device = next(hm.model.parameters()).device
    reader = load_recognizer(options.recognizer, device=str(device)) if C > 1 else None
    picture = None
    if options.picture_reader is not None and C > 1:
        picture = load_recognizer(options.picture_reader, device=str(device))
        if picture.config.input != "image":
            raise GenseqError(f"{options.picture_reader}: --picture-reader needs a reader of pictures "
                              "(genseq train recognizer --input image); this one reads the pen's path")
    style = load_style(hm, options, reader, left_out)
    sopts = HandSampleOptions(bias=style_bias(options, style), seed=options.seed, char_bias=options.char_bias)
    prime = None if style is None else style.prime
    margin = style_margin(options, style)
    gap = style_word_gap(options, style)
    bars = style_bars(options, style)
    norm = (hm.config.norm_mean, hm.config.norm_std)
    todo = [i for i, ln in enumerate(lines) if ln]
    out: list[HandLine | None] = [None] * len(lines)
    per_batch = BATCH_LINES if C == 1 else max(1, BATCH_SEQUENCES // C)
    from tqdm import tqdm
    with tqdm(total=len(todo), unit="line", desc="writing", disable=len(todo) <= per_batch) as bar:
        for k in range(0, len(todo), per_batch):
            idx = todo[k:k + per_batch]
            # One priming sample for every batch keeps one hand; offsetting the seed avoids repeats.
            batch_opts = HandSampleOptions(**{**sopts.__dict__, "seed": options.seed + k})
            shown = progress_keys(progress, idx.__getitem__)
            if reader is None:
                written = sample_synthesis(hm.model, [lines[i] for i in idx], batch_opts, prime, progress=shown)
            else:
                score = scorer(reader, norm, options.cross_check, margin, picture, bars) if options.by_word else None
                drawn = _candidates([lines[i] for i in idx], C, hm, batch_opts, prime, score, shown)
                written = choose(drawn, C, reader, norm, options.cross_check, margin, picture,
                                 by_hand(None, DOT_CHECK, 0.0, style), bars)
            for i, line in zip(idx, written):
                line = replace(line, points=widen_word_gaps(line.points, line.phi, line.text, gap))
                if style is not None and style.shear is not None:
                    line = lean_line(line, style.shear, hm.config)  # the writer's slant (hand.slant)
                out[i] = line
                if on_line is not None:
                    on_line(i, line)
            bar.update(len(idx))
    return out


def _candidates(texts: list[str], C: int, hm: HandModel, opts: HandSampleOptions, prime,
                score=None, progress: Progress | None = None) -> list[HandLine]:
    """C versions of each text, grouped by text; with `score` (a words.Scorer) the C
    are pruned to the best at every word's end. A line is re-drawn (all C again,
    up to opts.resample_bad times) only when none of its C passed the attention checks."""
    words = (C, score) if score is not None else None
    drawn = sample_synthesis(hm.model, [t for t in texts for _ in range(C)], replace(opts, resample_bad=0),
                             prime, words, _per_text(progress, C, words, range(len(texts))))
    for attempt in range(1, opts.resample_bad + 1):
        redo = [g for g in range(len(texts)) if all(c.status != "ok" for c in drawn[g * C:(g + 1) * C])]
        if not redo:
            break
        again = sample_synthesis(hm.model, [texts[g] for g in redo for _ in range(C)],
                                 replace(opts, resample_bad=0, seed=opts.seed + 7919 * attempt), prime, words,
                                 _per_text(progress, C, words, redo))
        for n, g in enumerate(redo):
            for j in range(C):
                again[n * C + j].tries = attempt + 1
                drawn[g * C + j] = again[n * C + j]
    return drawn


def _per_text(progress: Progress | None, C: int, words, texts) -> Progress | None:
    """progress as sample_synthesis calls it for C candidates of each of `texts` (indices
    into the caller's texts): with `words` it reports per line already; without, the
    rows are candidates and the first of each line is shown."""
    if words:
        return progress_keys(progress, lambda g: texts[g])
    return progress_keys(progress, lambda b: texts[b // C] if b % C == 0 else None)


def write_handwriting(text: str, model: str | os.PathLike | HandModel | None = None,
                      options: WriteOptions = WriteOptions()) -> tuple[list[str], list[HandLine | None]]:
    """Handwrite `text`: returns (SVG pages, the written lines)."""
    lines, written = write_drawing(text, model, options)
    return render_pages(lines, options.page), written


def write_drawing(text: str, model: str | os.PathLike | HandModel | None = None,
                  options: WriteOptions = WriteOptions(),
                  left_out: Report | None = None) -> tuple[list[np.ndarray | None], list[HandLine | None]]:
    """Handwrite `text`: returns (every line's (N, 3) offsets in data units, None for a blank
    line: what the renderers of genseq.render lay out; the written lines). `left_out`
    counts the lines of a style file that cannot prime."""
    options.check()
    hm = model if isinstance(model, HandModel) else load_hand_model(model)
    if hm.config.kind != "synthesis":
        raise GenseqError("this is a prediction model: it writes without text (use `genseq scribble`)")
    if len(text) > options.max_text:
        raise GenseqError(f"the text has {len(text):,} characters; the limit is {options.max_text:,} "
                          "(--max-text raises it; writing takes about 25 ms per character on a CPU)")
    text = clean_text(text, hm.config.alphabet, options.unknown, options.replacement)
    lines = wrap_lines(text, options.max_chars)
    if not lines:
        raise GenseqError("nothing to write: the text is empty or only spaces")
    written = write_lines(lines, hm, options, left_out=left_out)
    config = hm.config
    return [None if w is None else denormalise(w.points, config.norm_mean, config.norm_std) for w in written], written


def scribble(model: str | os.PathLike | HandModel | None, lines: int = 3, steps: int = 400,
             bias: float = 0.5, seed: int = 0, page: PageOptions = PageOptions(background="white")) -> list[str]:
    """Unconditional handwriting from a prediction model (Graves 2013 section 4): SVG pages."""
    return render_pages(scribble_lines(model, lines, steps, bias, seed), page)


def scribble_lines(model: str | os.PathLike | HandModel | None, lines: int = 3, steps: int = 400,
                   bias: float = 0.5, seed: int = 0) -> list[np.ndarray]:
    """The lines scribble draws, as (T, 3) offsets in data units."""
    hm = model if isinstance(model, HandModel) else load_hand_model(model)
    out = sample_unconditional(hm.model, lines, steps, HandSampleOptions(bias=bias, seed=seed))
    config = hm.config
    return [denormalise(o.points, config.norm_mean, config.norm_std) for o in out]
