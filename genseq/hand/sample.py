"""Writing with a trained handwriting model: pure functions of (model, options).

Points come back *normalised* (as the model sees them), (N, 3) numpy float32
(dx, dy, pen_up); `denormalise` maps them to data units for rendering.

Synthesis (Graves 2013 section 5): all lines run together as one batch, each
with its own text (padding masked). A line ends at the first step where the
window attends past its last character more than to any character:
φ(t, U+1) > φ(t, u) for all u ≤ U (Graves 2013 section 5.3; φ is evaluated
at one extra, empty position past the end). The point of that step is
dropped and the last kept point gets pen_up = 1. A line that has not ended
after `max_steps_per_char * len(text)` steps is cut there.

Afterwards each line gets a status from its φ history:
- "ok";
- "ran_on": hit the step limit without ending;
- "stalled": the most attended position did not move for `stall_steps` steps;
- "skipped": some character of the line was never the most attended one.
Bad lines are written again (with fresh random draws) up to `resample_bad` times.

Priming (Graves 2013 section 5.5): the network is run over the user's strokes
with the text prime_text + " " + text, and then keeps writing from that state:
κ and the window carry on, so the window simply moves on from the priming
text to the new text. (The alternative, resetting κ to 0 on a new text, puts
the window where the network never saw it after real strokes.) φ is returned
for the line's own characters only.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import GenseqError
from .mdn import mdn_sample
from .model import HandwritingModel, pad_texts

STATUSES = ("ok", "ran_on", "stalled", "skipped")


@dataclass(frozen=True)
class HandSampleOptions:
    """How to write; defaults suit a trained Graves-size model."""

    bias: float = 0.75  # Graves 2013 section 5.4 sampling bias b (0 = unbiased, larger = neater)
    seed: int = 0  # seeds the torch.Generator: same seed, same model, same lines
    max_steps_per_char: int = 40  # safety limit on points per character of a line
    stall_steps: int = 60  # a line whose attended character does not move this long is bad
    resample_bad: int = 2  # how many times to write a bad line again
    precision: str = "bf16"  # matmul weights while writing: "bf16" (about 2x faster on CPU) or "fp32"


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
    # (B, 3): "pen just lifted" at the origin, the first input of an unprimed line.
    p = model.lstms[0].weight_ih_l0
    x = p.new_zeros(batch, 3)
    x[:, 2] = 1.0
    return x


def _generator(model: HandwritingModel, seed: int) -> torch.Generator:
    return torch.Generator(device=model.lstms[0].weight_ih_l0.device).manual_seed(seed)


def _writer(model: HandwritingModel, precision: str) -> HandwritingModel:
    # The per-step network: a bf16 copy streams half the weight bytes per step
    # (sampling a batch of a few lines is bound by reading weights); its state,
    # window and mixture maths stay fp32 (see HandwritingModel.step).
    if precision == "fp32":
        return model
    if precision == "bf16":
        return copy.deepcopy(model).to(torch.bfloat16).eval()
    raise GenseqError(f"unknown precision {precision!r} (want 'bf16' or 'fp32')")


def sample_unconditional(
    model: HandwritingModel, n_lines: int, steps: int, options: HandSampleOptions = HandSampleOptions()
) -> list[HandLine]:
    """Free-running prediction network (Graves 2013 section 4): n_lines of `steps` points."""
    gen = _generator(model, options.seed)
    writer = _writer(model, options.precision)
    with torch.inference_mode():
        state = model.initial_state(n_lines)
        x = _start_point(model, n_lines)
        out = x.new_empty(n_lines, steps, 3)  # (B, T, 3)
        for t in range(steps):
            params, state, _ = writer.step(x, state, None)
            x = mdn_sample(params, options.bias, gen).to(x.dtype)
            out[:, t] = x
        pts = out.float().cpu().numpy()
    return [HandLine("", pts[b], None, "ok") for b in range(n_lines)]


def sample_synthesis(
    model: HandwritingModel,
    texts: list[str],
    options: HandSampleOptions = HandSampleOptions(),
    prime: tuple[np.ndarray | torch.Tensor, str] | None = None,
) -> list[HandLine]:
    """Write each text as a line (one batch); see the module docstring for stopping and statuses.

    prime: optional (points (T, 3) normalised, their text) to write in that style.
    """
    if not model.synthesis:
        raise GenseqError("this is a prediction model; it cannot write given text")
    if not texts or any(not t for t in texts):
        raise GenseqError("give at least one line, and no empty lines")
    gen = _generator(model, options.seed)
    writer = _writer(model, options.precision)
    lines = _write(model, writer, texts, options, prime, gen)
    for attempt in range(options.resample_bad):
        bad = [i for i, line in enumerate(lines) if line.status != "ok"]
        if not bad:
            break
        redo = _write(model, writer, [texts[i] for i in bad], options, prime, gen)
        for i, line in zip(bad, redo):
            line.tries = lines[i].tries + 1
            lines[i] = line
    return lines


def _write(model, writer, texts, options, prime, gen) -> list[HandLine]:
    # model primes (fp32 forward over the strokes); writer takes the steps.
    B = len(texts)
    alphabet = model.config.alphabet
    sep = " " if " " in alphabet else ""
    prime_text = (prime[1] + sep) if prime is not None else ""
    full = [prime_text + t for t in texts]
    P = len(prime_text)  # the line's own characters are positions P+1 .. P+len(text)
    # One extra empty position past the longest text: φ there is the "past the end" test.
    ids, _ = pad_texts(full, alphabet, extra=1)  # (B, U + 1)
    device = model.lstms[0].weight_ih_l0.device
    ids = ids.to(device)
    lens = torch.tensor([len(f) for f in full], device=device)  # (B,) U_b
    caps = torch.tensor([options.max_steps_per_char * len(t) for t in texts], device=device)
    T_max = int(caps.max())
    U1 = ids.shape[1]
    pos = torch.arange(1, U1 + 1, device=device)
    real = (pos.unsqueeze(0) <= lens.unsqueeze(1))  # (B, U+1) the line's characters
    end_index = lens.unsqueeze(1)  # (B, 1) zero-based index of position U_b + 1

    with torch.inference_mode():
        text = model.one_hot(ids)  # (B, U+1, V)
        if prime is not None:
            pts = torch.as_tensor(np.asarray(prime[0]), dtype=text.dtype, device=device)
            if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) < 1:
                raise GenseqError("priming strokes must be an (N, 3) array of points")
            pts = pts.unsqueeze(0).expand(B, -1, -1)
            _, state, _ = model(pts[:, :-1], ids, None) if pts.shape[1] > 1 else (None, model.initial_state(B), None)
            x = pts[:, -1]
        else:
            state = model.initial_state(B)
            x = _start_point(model, B)
        points = x.new_zeros(B, T_max, 3)  # (B, T, 3)
        phis = torch.zeros(B, T_max, U1, device=device)  # (B, T, U+1)
        length = caps.clone()  # (B,) points kept per line
        done = torch.zeros(B, dtype=torch.bool, device=device)
        ended = torch.zeros(B, dtype=torch.bool, device=device)
        neg = torch.tensor(-1.0, device=device)
        for t in range(T_max):
            params, state, phi = writer.step(x, state, text)
            x = mdn_sample(params, options.bias, gen).to(x.dtype)
            points[:, t] = x
            phis[:, t] = phi
            # Graves 2013 section 5.3: stop once φ past the end beats every real character.
            past = phi.gather(1, end_index).squeeze(1) > torch.where(real, phi, neg).amax(1)
            stop = past & ~done
            length = torch.where(stop, t, length)  # drop the point written past the end
            ended |= stop
            done |= stop | (caps <= t + 1)
            if t % 8 == 7 and bool(done.all()):
                break
        points_np = points.float().cpu().numpy()
        phis_np = phis.cpu().numpy()
    out = []
    for b, text_b in enumerate(texts):
        n = int(length[b])
        pts_b = points_np[b, :n].copy()
        if n:
            pts_b[-1, 2] = 1.0  # close the last stroke
        phi_all = phis_np[b, :n]
        status = _status(phi_all, P, len(text_b), bool(ended[b]), options.stall_steps)
        out.append(HandLine(text_b, pts_b, phi_all[:, P : P + len(text_b)].copy(), status))
    return out


def _status(phi: np.ndarray, P: int, U: int, ended: bool, stall_steps: int) -> str:
    # phi: (N, U+1...) φ history of one line over all positions of its full text.
    if len(phi) == 0:
        return "ok" if ended else "ran_on"
    top = phi[:, : P + U + 1].argmax(1)  # most attended position per step (end position included)
    change = np.flatnonzero(np.diff(top)) + 1
    runs = np.diff(np.concatenate(([0], change, [len(top)])))
    if runs.max() >= stall_steps:
        return "stalled"
    if not ended:
        return "ran_on"
    seen = np.zeros(P + U + 1, dtype=bool)
    seen[top] = True
    if not seen[P : P + U].all():
        return "skipped"
    return "ok"
