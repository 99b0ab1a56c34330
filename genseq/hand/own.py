"""Fine-tuning on your own handwriting: JSONL or InkML straight into a run.

`genseq train handwriting mine.jsonl --init default -o runs/mine` converts the
files into the run folder, brought to the starting model's own ink (size,
points per character, level baseline: genseq.strokes.normalise) and stood
upright (strokes.normalise.stand_upright: the model file records the writer's
slant, and its lines lean back towards it, hand.slant), with a share of the
lines held out to choose the best step by; and, for flags left at their
defaults, uses SMALL_SET: a short, gentle schedule for 20-40 lines.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import GenseqError
from ..strokes.ownink import OWN_SUFFIXES


@dataclass(frozen=True)
class SmallSet:
    """Training flags for a few dozen lines of one writer. Measured on stand-in
    writers (docs/your-handwriting.md): at lr 3e-4 the held-out lines got worse
    after 25 steps of 8 lines; at 1e-4 with --augment 1 they improve for
    50-150 steps, and best.pt keeps the best step."""

    max_steps: int = 150
    lr: float = 1e-4
    warmup: int = 10
    batch: int = 8
    eval_every: int = 10
    augment: float = 1.0  # a random slant, rotation and stretch per line: 16 lines are easy to memorise
    dropout: float = 0.0
    precision: str = "bf16"
    max_points: int = 2500  # long lines of a tablet writer are still lines to learn from
    val_frac: float = 0.15  # of the writer's texts, at least min_val lines
    min_val: int = 3
    blend: float = 0.125  # best.pt: an eighth the tuned weights, the rest the starting model's (genseq.train.blend)

    def schedule(self) -> dict:
        """The genseq.train.TrainOptions values of the recipe."""
        return {k: getattr(self, k) for k in ("max_steps", "lr", "warmup", "eval_every", "precision")}

    def lines(self) -> dict:
        """The recipe's training lines: batch, max_points, augment, dropout (HandTask's)."""
        return {k: getattr(self, k) for k in ("batch", "max_points", "augment", "dropout")}


SMALL_SET = SmallSet()


def is_own(path: Path) -> bool:
    return Path(path).suffix.lower() in OWN_SUFFIXES


def own_data(paths: list[Path], out: Path, init_meta: dict | None, resume: bool,
             small: SmallSet = SMALL_SET, upright: bool = True) -> list[Path]:
    """The stroke files a run trains on: stroke HDF5 files as given; each JSONL or
    InkML file converted once into `out` (`<name>.h5`; a resumed run reuses it),
    normalised to the starting model's ink when it records one and then, with
    `upright`, stood upright (strokes.normalise.stand_upright)."""
    from ..strokes.build import ImportOptions
    from ..strokes.inkml import convert_inkml
    from ..strokes.jsonl import convert_jsonl
    from ..strokes.normalise import model_ink
    target = model_ink(init_meta) if init_meta is not None else None
    done, names = [], {}
    for p in paths:
        if not is_own(p):
            done.append(p)
            continue
        h5 = out / _h5_name(Path(p), names)
        if resume and h5.exists():
            if not upright and writer_shear_of(h5) is not None:
                raise GenseqError(f"{h5}: this run learns your lines stood upright; resume it without --as-written")
            done.append(h5)
            continue
        if not Path(p).is_file():
            raise GenseqError(f"{p}: no such file")
        opts = ImportOptions(val_frac=small.val_frac, target=target, upright=upright and target is not None,
                             target_units=str((init_meta or {}).get("units", "")))
        convert = convert_jsonl if Path(p).suffix.lower() == ".jsonl" else convert_inkml
        opts = _with_val(opts, p, small)  # may refuse too few lines: before the run folder is made
        out.mkdir(parents=True, exist_ok=True)
        report = convert([p], h5, opts)
        print(report.summary(), flush=True)
        done.append(h5)
    return done


def writer_shear_of(h5: Path) -> float | None:
    """The writer's slant a converted stroke file's lines were stood upright from
    (StrokeDataset.writer_shear); None: as written."""
    from ..strokes import StrokeDataset
    with StrokeDataset(h5) as ds:
        return ds.writer_shear


def _h5_name(path: Path, names: dict) -> str:
    """`<stem>.h5` for the file converted from `path`; `<stem>-2.h5` and on when
    another file of the run has the same stem (`a/mine.jsonl b/mine.jsonl`). The
    same file given twice keeps one name. `names` maps each source to its name."""
    key = str(path.resolve())
    if key not in names:
        taken = {n.lower() for n in names.values()}
        name, k = f"{path.stem}.h5", 1
        while name.lower() in taken:
            k += 1
            name = f"{path.stem}-{k}.h5"
        names[key] = name
    return names[key]


def _with_val(opts, path: Path, small: SmallSet):
    """Hold out at least `small.min_val` texts when the file has enough (groups are texts)."""
    from dataclasses import replace

    from ..strokes.split import split_of
    texts = _texts(path)
    if len(texts) < 2 * small.min_val:
        raise GenseqError(f"{path}: {len(texts)} distinct lines; fine-tuning needs at least "
                          f"{2 * small.min_val} (a few held out to choose the best step)")
    for seed in range(1000):  # the first split seed that holds out enough lines
        if sum(split_of(t, small.val_frac, 0.0, seed) == "val" for t in texts) >= small.min_val:
            return replace(opts, seed=seed)
    return opts


def _texts(path: Path) -> set[str]:
    """The distinct texts (groups) of the usable lines of a JSONL or InkML file;
    what is skipped, the converter reports."""
    from ..strokes.build import Report
    from ..strokes.clean import CleanOptions
    from ..strokes.ownink import iter_ink
    return {g for g, *_ in iter_ink(path, CleanOptions(), Report())}


STYLE_LINES = 3  # a fine-tune's own styles: this many of the writer's training lines
# ... brought to this share of the model's points per character. A fine-tuned model
# primed with them writes on at about their pace: on six unseen writers, lines at 0.95
# primed it into lines nearer the writer's hand than lines at its full density (style
# distance 0.39 against 0.45), a little less legible (CER 0.024 against 0.021); on
# those six, 0.9 measured as 0.95 (docs/your-handwriting.md).
STYLE_DENSITY = 0.95


def own_styles(path: Path, config, n: int = STYLE_LINES, legible=None, source: Path | None = None,
               target=None, density: float = STYLE_DENSITY) -> list[dict]:
    """Up to `n` of the writer's training lines in `path` (a converted own-ink
    file, data units) that the model (`config`) can write, in api.prime_order
    (`legible`: None, the bundled reader): what a fine-tuned model primes with
    when no style is asked for, so that it writes in that writer's hand (the
    bundled styles are the base model's). With `source`, the JSONL or InkML
    file `path` was converted from, and `target`, the starting model's ink
    (strokes.normalise.InkTarget), the lines are normalised from the source
    again, all lines together as a style file's are, to `density` of the
    target's points per character (by pen time when all lines carry it), and
    leant by the shear that stood the file's lines upright where it records
    one (StrokeDataset.writer_shear). Lines a model file's styles cannot hold (api.MAX_MODEL_STYLES) are left out."""
    from dataclasses import replace

    from ..strokes import StrokeDataset
    from ..strokes.normalise import stand_from
    from ..strokes.ownink import read_ink
    from .api import MAX_MODEL_STYLES, prime_legibility, prime_order
    with StrokeDataset(path) as ds:
        lines = [s for s in ds.split("train") if s.text and set(s.text) <= set(config.alphabet)]
        k = ds.writer_shear
    if source is not None and target is not None and Path(source).is_file():
        try:
            again = read_ink(source, target=replace(target, points_per_char=target.points_per_char * density))
        except GenseqError:  # the converted lines, at the model's full density, then
            again = None
        if again is not None:
            train = {s.text for s in lines}
            lines = [s for s in again if s.text in train]
            if k is not None:  # stood upright as the lines the model learnt (strokes.normalise.stand_upright)
                lines = [replace(s, points=stand_from(s.points, k)) for s in lines]
    most_chars, most_points = MAX_MODEL_STYLES[1:]  # what a model file's styles may hold (api.model_styles)
    lines = [s for s in lines if len(s.text) <= most_chars and 1 < len(s.points) <= most_points]
    lines = prime_order(lines, config.alphabet, legible or prime_legibility(config))
    return [{"text": s.text, "points": [[round(float(v), 2) for v in row] for row in s.points]} for s in lines[:n]]
