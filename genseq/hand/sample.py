"""Writing with a trained handwriting model: pure functions of (model, options).

Points come back *normalised* (as the model sees them), (N, 3) numpy float32
(dx, dy, pen_up); `denormalise` maps them to data units for rendering.

Synthesis (Graves 2013 section 5): all lines run together as one batch, each
with its own text (padding masked). A line ends at the first step where the
window attends past its last character more than to any character:
φ(t, U+1) > φ(t, u) for all u ≤ U (Graves 2013 section 5's stopping rule;
φ is evaluated at one extra, empty position past the end). The point of that
step is dropped and the last kept point gets pen_up = 1. The window runs
ahead of the pen, so at that step the pen is sometimes still inside the last
letter. `finish_stroke=N` keeps such a line's points up to that lift (on by
default, N = 12) when the line ends in a letter or digit: after a closing
'.', ')' or '!' the stroke in progress is nearly always a new, stray one (a
'|' after "o'clock.").
After a '.', one dot-sized stroke begun while the window is on it (or on
the space or end just after it) is kept: the window often stays there for a
few more points, and the network then puts a second dot ("late..",
"genseq.."). The one kept is the rightmost of the roundest at the lowest
dots' height; higher dots to its left (an i's dot or a t's cross put in
late) stay, and so do the dots of "..." (`lines.extra_dots`; what counts as
dot-sized is lines.DOT_EXTENT). The measurements behind finish_stroke and
DOT_EXTENT are in bench/README.md ("How lines end").
A line that has not ended after `max_steps_per_char * len(text)` steps is
cut there. Finished lines stay in the batch (cheaper than reshaping it) but
their points are discarded; the loop stops when every line has finished or
hit its limit.

Afterwards each line gets a status from its φ history:
- "ok";
- "ran_on": hit the step limit without ending;
- "stalled": the most attended position did not move for `stall_steps` steps
  (judged afterwards: a stalled line runs on to its limit);
- "skipped": some character of the line was never the most attended one.
Bad lines are written again (with fresh random draws) up to `resample_bad` times.

The steps: on a CPU `npstep.NumpyStep` (numpy around the torch matmuls,
faster, see bench/README.md; drawing from a numpy Generator); on a GPU, for float64
models or with GENSEQ_NUMPY_STEP=0, `model.step` and `mdn_sample` with a
torch Generator. The two compute the same step and draw from the same
distributions, from other random numbers: same seed, same model and same
kind of step, same lines.

Priming (Graves 2013 section 5.5): the network is run over the user's strokes
with the text prime_text + " " + text, and then keeps writing from that state:
κ and the window carry on, so the window simply moves on from the priming
text to the new text. (The alternative, resetting κ to 0 on a new text, puts
the window where the network never saw it after real strokes.) φ is returned
for the line's own characters only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..errors import GenseqError
from .fast import npstep
from .mdn import mdn_sample
from .lines import attended, extra_dots, line_status, own_start, without
from .model import HandState, HandwritingModel, pad_texts
from .words import Scorer, WordChoice

STATUSES = ("ok", "ran_on", "stalled", "skipped")
# progress({line: points}): the lines that grew this round, each the whole line so far, (N, 3)
# normalised, while it is being written (a page that shows it live). One call per round, so a
# page lays out its lines once per round; the finished line (what sample_synthesis returns) can
# still differ at its end.
Progress = Callable[[dict[int, np.ndarray]], None]
PROGRESS_EVERY = 16  # steps between progress rounds of lines written alone (about 1.4 characters)


def progress_keys(progress: Progress | None, key: Callable[[int], int | None]) -> Progress | None:
    """progress with every line index b reported as key(b) (a line None drops is not reported)."""
    if progress is None:
        return None

    def mapped(grown: dict[int, np.ndarray]) -> None:
        out = {k: pts for b, pts in grown.items() if (k := key(b)) is not None}
        if out:
            progress(out)
    return mapped


@dataclass(frozen=True)
class HandSampleOptions:
    """How to write; defaults suit a trained Graves-size model."""

    bias: float = 0.75  # Graves 2013 section 5.4 sampling bias b (0 = unbiased, larger = neater)
    seed: int = 0  # seeds the random draws: same seed, same model, same device, same lines
    max_steps_per_char: int = 40  # safety limit on points per character of a line
    stall_steps: int = 60  # a line whose attended character does not move this long is bad
    resample_bad: int = 2  # how many times to write a bad line again
    finish_stroke: int = 12  # after the window leaves the text, points allowed to end the stroke in progress
    precision: str = "bf16"  # matmul weights while writing: "bf16" (about 2x faster on CPU) or "fp32"
    char_bias: tuple[str, float] | None = None  # (characters, b): a sharper bias while the window is on them


@dataclass
class HandLine:
    """One written line."""

    text: str
    points: np.ndarray  # (N, 3) float32 normalised (dx, dy, pen_up)
    phi: np.ndarray | None  # (N, U) float32 window weights over the line's characters
    status: str  # one of STATUSES
    tries: int = 1


def denormalise(points: np.ndarray, norm_mean, norm_std) -> np.ndarray:
    """(N, 3) normalised points -> (N, 3) with dx, dy in data units (pen_up unchanged)."""
    out = np.array(points, dtype=np.float32, copy=True)
    out[:, :2] = out[:, :2] * np.asarray(norm_std, np.float32) + np.asarray(norm_mean, np.float32)
    return out


def _start_point(model: HandwritingModel, batch: int) -> torch.Tensor:
    # (B, 3): the first input of an unprimed line, as in training: row 0 of
    # every sequence is a zero offset with the pen down.
    return model.lstms[0].weight_ih_l0.new_zeros(batch, 3)


def _generator(model: HandwritingModel, seed: int) -> np.random.Generator | torch.Generator:
    # The CPU steps in numpy (fast/npstep.py) and draws from numpy; elsewhere torch steps and draws.
    if npstep.usable(model):
        return np.random.default_rng(seed)
    return torch.Generator(device=model.lstms[0].weight_ih_l0.device).manual_seed(seed)


def _stepper(model: HandwritingModel, fused, text: torch.Tensor | None, bias: float, gen,
             char_bias: tuple[torch.Tensor, float] | None = None):
    """(x (B, 3), state) -> (next point (B, 3), new state, φ (B, U) or None), drawing from gen.
    char_bias: None, or (sharp (B, U) bool, b) as `sharp_positions` gives."""
    if isinstance(gen, np.random.Generator):
        return npstep.NumpyStep(model, fused, text, bias, gen, char_bias)

    def step(x, state):
        params, new, phi = model.step(x, state, text, fused)
        return mdn_sample(params, char_bias_rows(phi, bias, char_bias), gen).to(x.dtype), new, phi
    return step


def sharp_positions(ids: torch.Tensor, alphabet: str, chars: str) -> torch.Tensor:
    """(B, U) bool: the positions of ids (B, U) (1-based into alphabet, 0 padding) that hold one of chars."""
    want = torch.tensor([0] + [c in chars for c in alphabet], dtype=torch.bool, device=ids.device)
    return want[ids]


def char_bias_rows(phi: torch.Tensor | None, bias: float, char_bias) -> float | torch.Tensor:
    """The bias of each row (B,): char_bias's b where the window attends most to a
    sharp position (φ (B, U)), else `bias`; just `bias` when no row does."""
    if char_bias is None or phi is None:
        return bias
    sharp, b = char_bias
    hit = sharp.gather(1, phi.argmax(1, keepdim=True)).squeeze(1)  # (B,)
    if not bool(hit.any()):
        return bias
    return torch.where(hit, b, bias)


def _fused(model: HandwritingModel, precision: str):
    # Weights for HandwritingModel.step(fused=...): one matmul per layer and step;
    # bf16 streams half the bytes (writing a few lines is bound by reading weights).
    if precision not in ("bf16", "fp32"):
        raise GenseqError(f"unknown precision {precision!r} (want 'bf16' or 'fp32')")
    with torch.no_grad():
        return model.fused_weights(torch.bfloat16 if precision == "bf16" else None)


def sample_unconditional(
    model: HandwritingModel, n_lines: int, steps: int, options: HandSampleOptions = HandSampleOptions()
) -> list[HandLine]:
    """Free-running prediction network (Graves 2013 section 4): n_lines of `steps` points."""
    gen = _generator(model, options.seed)
    fused = _fused(model, options.precision)
    with torch.inference_mode():
        state = model.initial_state(n_lines)
        x = _start_point(model, n_lines)
        out = x.new_empty(n_lines, steps, 3)  # (B, T, 3)
        step = _stepper(model, fused, None, options.bias, gen)
        for t in range(steps):
            x, state, _ = step(x, state)
            out[:, t] = x
        pts = _finite(out.float().cpu().numpy())
    return [HandLine("", pts[b], None, "ok") for b in range(n_lines)]


def sample_synthesis(
    model: HandwritingModel,
    texts: list[str],
    options: HandSampleOptions = HandSampleOptions(),
    prime: tuple[np.ndarray | torch.Tensor, str] | None = None,
    words: tuple[int, Scorer] | None = None,
    progress: Progress | None = None,
) -> list[HandLine]:
    """Write each text as a line (one batch); see the module docstring for stopping and statuses.

    prime: optional (points (T, 3) normalised, their text) to write in that style.
    words: (C, scorer): the texts come in groups of C copies of a line (its
    candidates), and the C are pruned to the best at every word's end
    (words.py). Bad lines are then not written again here (a line's C rows
    would be split): the caller decides, as write._candidates does.
    progress: called with {index of the text: its points so far} as lines
    grow: every PROGRESS_EVERY steps, or with `words` at every chosen word
    (the index is then the line's group, text index // C). It draws no random
    numbers: the lines are the same with or without it.
    """
    if not model.synthesis:
        raise GenseqError("this is a prediction model; it cannot write given text")
    if not texts or any(not t for t in texts):
        raise GenseqError("give at least one line, and no empty lines")
    gen = _generator(model, options.seed)
    fused = _fused(model, options.precision)
    lines = _write(model, fused, texts, options, prime, gen, words, progress)
    for attempt in range(0 if words else options.resample_bad):
        bad = [i for i, line in enumerate(lines) if line.status != "ok"]
        if not bad:
            break
        redo = _write(model, fused, [texts[i] for i in bad], options, prime, gen, words,
                      progress_keys(progress, bad.__getitem__))
        for i, line in zip(bad, redo):
            line.tries = lines[i].tries + 1
            lines[i] = line
    return lines


def _write(model, fused, texts, options, prime, gen, words=None, progress=None) -> list[HandLine]:
    """One draw of every text, all as one batch: set the batch up, prime it or
    start it, step until every row has ended, then cut each row's line."""
    with torch.inference_mode():
        batch = _batch(model, texts, options, prime)
        text = model.one_hot(batch.ids)  # (B, U+1, V)
        start = _start(model, batch, prime, text.dtype)
        chooser = None
        if words is not None:
            C, score = words
            chooser = WordChoice(texts, C, batch.P, batch.reachable, batch.T, score, options.stall_steps, start,
                                 on_word=progress)
        sharp = None
        if options.char_bias is not None and options.char_bias[0]:
            sharp = (sharp_positions(batch.ids, model.config.alphabet, options.char_bias[0]), options.char_bias[1])
        step = _stepper(model, fused, text, options.bias, gen, sharp)
        points, phis, t1 = _run(step, batch, start, options.finish_stroke, chooser, progress)
        if chooser is None:
            taken = torch.full((len(texts),), t1, device=points.device)  # (B,) steps each row took
        else:
            taken = _compact(points, phis, chooser.rows.live[:, :t1])
        length, ended = _lengths(batch, points, phis, t1, taken, options.finish_stroke)
        points_np = _finite(points.float().cpu().numpy())
        phis_np = phis.cpu().numpy()
    return [_line(text_b, points_np[b, :n], phis_np[b, :n], batch.P, ended_b, options.stall_steps)
            for b, (text_b, n, ended_b) in enumerate(zip(texts, length.tolist(), ended.tolist()))]


@dataclass
class _Batch:
    """The rows of one batch and their limits, on the model's device.

    Row b writes texts[b]; its window reads full[b]: the priming text and a
    space (if any), then texts[b], at positions 1 .. U_b. One extra, empty
    position past the longest text is where φ tests "past the end" (Graves
    2013 section 5).
    """

    texts: list[str]  # (B,) each row's own text
    full: list[str]  # (B,) the texts the window reads: priming text first
    P: int  # characters before every row's own text: those are positions P+1 .. P+len(text)
    ids: torch.Tensor  # (B, U+1) character ids of `full`, zero-padded
    caps: torch.Tensor  # (B,) steps a row may take before it is cut
    real: torch.Tensor  # (B, U+1) bool: the row's characters
    reachable: torch.Tensor  # (B, U+1) bool: its characters and the position past its end
    end_index: torch.Tensor  # (B, 1) zero-based index of position U_b + 1
    steps: torch.Tensor  # (T,) 0 .. T-1, T the largest cap

    @property
    def T(self) -> int:
        return len(self.steps)


def _batch(model: HandwritingModel, texts: list[str], options: HandSampleOptions, prime) -> _Batch:
    alphabet = model.config.alphabet
    sep = " " if " " in alphabet else ""
    prime_text = (prime[1] + sep) if prime is not None else ""
    full = [prime_text + t for t in texts]
    ids, _ = pad_texts(full, alphabet, extra=1)  # (B, U + 1)
    device = model.lstms[0].weight_ih_l0.device
    ids = ids.to(device)
    lens = torch.tensor([len(f) for f in full], device=device).unsqueeze(1)  # (B, 1) U_b
    caps = torch.tensor([options.max_steps_per_char * len(t) for t in texts], device=device)
    pos = torch.arange(1, ids.shape[1] + 1, device=device).unsqueeze(0)  # (1, U+1)
    return _Batch(texts, full, len(prime_text), ids, caps, real=pos <= lens, reachable=pos <= lens + 1,
                  end_index=lens, steps=torch.arange(int(caps.max()), device=device))


def _start(model: HandwritingModel, batch: _Batch, prime, dtype: torch.dtype) -> tuple[HandState, torch.Tensor]:
    """The state before the first step and the first input (B, 3): after the
    priming strokes (Graves 2013 section 5.5), or as in training."""
    B = len(batch.texts)
    if prime is None:
        return model.initial_state(B), _start_point(model, B)
    pts = torch.as_tensor(prime[0]).to(device=batch.ids.device, dtype=dtype)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) < 1:
        raise GenseqError("priming strokes must be an (N, 3) array of points")
    return _primed(model, pts, batch.ids, batch.full)


CHECK_EVERY = 8  # steps between the stopping checks: they wait on the device, the steps need not


def _run(step, batch: _Batch, start: tuple[HandState, torch.Tensor], finish_stroke: int,
         chooser: WordChoice | None, progress: Progress | None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The step loop: points (B, T, 3), φ (B, T, U+1) and t1, the steps taken.

    Every CHECK_EVERY steps the rows are checked against the stopping rule
    (`_past_end`) and their caps; once all have ended, finish_stroke more
    steps let the last one finish its stroke (`_lengths`). With a chooser,
    rows pause at word ends and their histories have gaps (`_compact`).
    """
    state, x = start
    B, T = len(batch.texts), batch.T
    points = x.new_zeros(B, T, 3)  # (B, T, 3)
    phis = torch.zeros(B, T, batch.ids.shape[1], device=x.device)  # (B, T, U+1)
    finished = torch.zeros(B, dtype=torch.bool, device=x.device)
    stop = T
    for t in range(T):
        x_new, new, phi = step(x, state)
        points[:, t] = x_new
        phis[:, t] = phi
        if chooser is None:
            state, x = new, x_new
        else:
            state, x = chooser.advance(t, state, new, x, x_new, phi)
        if t + 1 >= stop:
            break
        if stop == T and (t % CHECK_EVERY == CHECK_EVERY - 1 or t == T - 1):
            if chooser is not None:
                chooser.check(t + 1, points, phis, state, x, finished)
            live = None if chooser is None else chooser.rows.live
            finished |= _past_end(batch, phis, t - t % CHECK_EVERY, t + 1, live).any(1) | (batch.caps <= t + 1)
            if progress is not None and chooser is None and (t + 1) % PROGRESS_EVERY == 0:
                _show(progress, points, phis, finished, t + 1, batch.P)
            if bool(finished.all()):
                stop = min(T, t + 1 + finish_stroke)
                if stop == t + 1:
                    break
    return points, phis, t + 1


def _past_end(batch: _Batch, phis: torch.Tensor, t0: int, t1: int, live: torch.Tensor | None = None) -> torch.Tensor:
    """(B, t1 - t0) bool, Graves 2013 section 5's stopping rule at steps t0 .. t1-1: φ one
    position past the end beats φ at every real character (and the step is within the cap).
    live (B, T): the steps a row took (word choice pauses rows), or None for all."""
    blk = phis[:, t0:t1]
    end = blk.gather(2, batch.end_index.unsqueeze(1).expand(-1, t1 - t0, 1)).squeeze(2)
    real_max = torch.where(batch.real.unsqueeze(1), blk, -1.0).amax(2)
    out = (end > real_max) & (batch.steps[t0:t1] < batch.caps.unsqueeze(1))
    return out if live is None else out & live[:, t0:t1]


def _compact(points: torch.Tensor, phis: torch.Tensor, live: torch.Tensor) -> torch.Tensor:
    """Drop the steps that paused rows did not take: in place, each row's own steps
    come first, in order, then zeros. points (B, T, 3), φ (B, T, U+1); live (B, t1)
    bool, the steps each row took. Returns (B,) how many."""
    t1 = live.shape[1]
    taken = live.sum(1)
    order = torch.sort((~live).to(torch.uint8), dim=1, stable=True).indices  # (B, t1) live steps first
    kept = (torch.arange(t1, device=live.device).unsqueeze(0) < taken.unsqueeze(1)).unsqueeze(2)
    points[:, :t1] = points[:, :t1].gather(1, order.unsqueeze(2).expand(-1, -1, 3)) * kept
    phis[:, :t1] = phis[:, :t1].gather(1, order.unsqueeze(2).expand(-1, -1, phis.shape[2])) * kept
    return taken


def _lengths(batch: _Batch, points: torch.Tensor, phis: torch.Tensor, t1: int, taken: torch.Tensor,
             finish_stroke: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,) points each row keeps, and (B,) bool whether it ended by the stopping rule.

    A row that ended keeps the points before its first step past the end, or,
    when its pen was still in its last letter then, up to the first pen lift
    within finish_stroke steps (`_finishing_lifts`); the others keep what they
    wrote up to their cap."""
    past = _past_end(batch, phis, 0, t1)  # (B, t1)
    ended = past.any(1)
    end_step = past.to(torch.uint8).argmax(1)  # (B,) first step attending past the end
    length = torch.where(ended, end_step, torch.minimum(batch.caps, taken))
    lift = _finishing_lifts(batch.texts, points[:, :t1, 2] > 0.5, end_step, ended, finish_stroke)
    return torch.where(lift.any(1), lift.to(torch.uint8).argmax(1) + 1, length), ended


def _finishing_lifts(texts: list[str], lifts: torch.Tensor, end_step: torch.Tensor, ended: torch.Tensor,
                     finish_stroke: int) -> torch.Tensor:
    """(B, t1) bool: the pen lifts (lifts (B, t1)) that may end a row's last stroke.

    The window leaves the text while the pen is sometimes still in its last
    letter: a lift within finish_stroke steps of the row's end step ends that
    letter. Not when the pen had already lifted at the step before (a new
    stroke would be a stray mark), nor after a closing mark ('.', ')', '!'),
    where the stroke in progress is nearly always a new, stray one."""
    after = torch.arange(lifts.shape[1], device=lifts.device).unsqueeze(0)  # (1, t1)
    window = (after >= end_step.unsqueeze(1)) & (after < (end_step + finish_stroke).unsqueeze(1))
    mid_stroke = ~lifts.gather(1, (end_step - 1).clamp(min=0).unsqueeze(1)).squeeze(1) & (end_step > 0)
    letter_end = torch.tensor([s[-1:].isalnum() for s in texts], device=lifts.device)
    return lifts & window & (ended & mid_stroke & letter_end).unsqueeze(1)


def _line(text: str, points: np.ndarray, phi: np.ndarray, P: int, ended: bool, stall_steps: int) -> HandLine:
    """One row's line from its kept points (N, 3) and φ (N, U+1): its status
    (judged on the whole history), without extra dots, its last stroke closed,
    and, when primed, without the strokes that still finish the priming text."""
    status = line_status(phi, P, len(text), ended, stall_steps)
    drop = extra_dots(points, attended(phi), text, P)
    points, phi = without(points, drop), phi[~drop]
    if len(points):
        points[-1, 2] = 1.0
    if P:
        start = own_start(phi, points, P)
        points, phi = points[start:], phi[start:]
    return HandLine(text, points, phi[:, P : P + len(text)].copy(), status)


def _show(progress: Progress, points: torch.Tensor, phis: torch.Tensor, finished: torch.Tensor, t1: int,
          P: int) -> None:
    """progress({b: line b so far}) for the rows still writing; a primed row only once its
    window has reached its own text, from the stroke where it did (lines.own_start)."""
    rows = torch.nonzero(~finished).flatten()
    pts_all = points[rows, :t1].float().cpu().numpy()  # (R, t1, 3)
    phi_all = phis[rows, :t1].cpu().numpy() if P else None  # (R, t1, U+1)
    grown = {}
    for n, b in enumerate(rows.tolist()):
        pts = pts_all[n]
        if P:
            if not (attended(phi_all[n]) >= P).any():
                continue
            pts = pts[own_start(phi_all[n], pts, P):]
        if len(pts):
            grown[b] = pts
    if grown:
        progress(grown)


def _finite(points: np.ndarray) -> np.ndarray:
    """points, or a clear error if the network gave NaN or inf (broken weights)."""
    if not np.isfinite(points).all():
        raise GenseqError("the model wrote non-finite points (NaN or inf): its weights are broken")
    return points


def _primed(model, pts, ids, full) -> tuple[HandState, torch.Tensor]:
    """The state after the priming strokes pts (T, 3), and the first input (B, 3).

    The network runs over all but the last point; the last one is the first
    input of the sampling loop. ids (B, U + 1) hold each row's text `full[b]`
    (priming text first). Rows with the same text (a line's candidates) prime
    alike: each distinct text runs once and its state is copied to its rows.
    """
    first = {f: b for b, f in reversed(list(enumerate(full)))}  # text -> its first row
    rows = sorted(first.values())  # one row per distinct text
    which = torch.tensor([rows.index(first[f]) for f in full], device=ids.device)  # (B,) row -> its text
    state = model.initial_state(len(rows))
    if pts.shape[0] > 1:
        _, state, _ = model(pts[:-1].unsqueeze(0).expand(len(rows), -1, -1), ids[rows], None, state)
    state = HandState(state.h[:, which], state.c[:, which], state.kappa[which], state.window[which])
    return state, pts[-1].expand(len(full), -1)


