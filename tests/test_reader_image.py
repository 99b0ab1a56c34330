"""The image reader: lines drawn as pictures (reader/raster.py), read through convolutions."""
import json

import numpy as np
import pytest
import torch

from genseq.checkpoint import load_checkpoint
from genseq.errors import GenseqError
from genseq.reader.model import Recognizer, RecognizerConfig, ctc_feasible, ctc_nll, out_frames
from genseq.reader.raster import PAD, raster_widths, rasterise
from cli_checks import invoke
from strokes_fixtures import fake_reading_file, written_pair

ALPHA = " .abc"
TEXTS = ["abc", "cab a", "b.c", "aa bb", "c a b", "abc.", "ba ca", "cc.a"]


def _batch(lines: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.zeros(len(lines), max(len(p) for p in lines), 3)
    for b, p in enumerate(lines):
        x[b, : len(p)] = torch.from_numpy(np.asarray(p, np.float32))
    return x, torch.tensor([len(p) for p in lines])


def _stroke(path: np.ndarray) -> np.ndarray:
    """Pen positions (N, 2) -> offsets (N, 3), the pen lifted after the last."""
    off = np.zeros((len(path), 3), np.float32)
    off[:, :2] = np.diff(path, axis=0, prepend=np.zeros((1, 2)))
    off[-1, 2] = 1
    return off


def test_a_segment_is_drawn_where_it_lies():
    # One horizontal stroke 100 units long at the line's median height, at 0.1 pixels per unit.
    x, n = _batch([_stroke(np.array([[0.0, 0.0], [100.0, 0.0]]))])
    img = rasterise(x, n, (1.0, 1.0), height=16, px_per_unit=0.1)
    assert img.shape == (1, 1, 16, raster_widths(x, n, (1.0, 1.0), 0.1)[0]) == (1, 1, 16, 10 + 2 * PAD + 1)
    ink = img[0, 0] > 0.5
    rows, cols = np.nonzero(ink.numpy())
    assert set(rows) <= {7, 8, 9} and cols.min() <= PAD and cols.max() >= PAD + 10  # thickened by one pixel
    assert float(img.max()) == 1.0 and float(img.min()) == 0.0


def test_the_picture_depends_on_the_ink_not_on_its_points():
    """The same strokes sampled densely or sparsely, moved, or padded with anything: one picture."""
    t = np.linspace(0, 2 * np.pi, 200)
    loop = np.stack([60 * np.cos(t) + 300 * t / (2 * np.pi), 80 * np.sin(t)], 1)
    bar = np.stack([np.linspace(0, 300, 50), np.full(50, -120.0)], 1)
    dense = np.concatenate([_stroke(loop), _stroke(bar - loop[-1])])
    sparse = np.concatenate([_stroke(loop[::4]), _stroke(bar[::7] - loop[::4][-1])])
    moved = dense.copy()
    moved[0, :2] += (500.0, -40.0)  # the whole line elsewhere: the first offset is where it starts
    x, n = _batch([dense, sparse, moved])
    x = torch.cat([x, torch.full((3, 5, 3), float("nan"))], 1)  # padding, whatever it holds, is not drawn
    img = rasterise(x, n, (1.0, 1.0), height=32, px_per_unit=0.1)
    assert torch.allclose(img[0], img[2], atol=1e-3)
    # A sparser polyline cuts corners a little and splats at other points: the same ink, edges apart.
    assert (img[0] - img[1]).abs().mean() < 0.15 * img[0].mean()
    a, b = img[0] > 0.5, img[1] > 0.5
    assert (a & b).sum() > 0.85 * (a | b).sum()
    # Offsets normalised by another spread draw the same picture given that spread.
    std = (2.0, 4.0)
    xs = x.clone()
    xs[:, :, 0] /= std[0]
    xs[:, :, 1] /= std[1]
    assert torch.allclose(rasterise(xs, n, std, 32, 0.1), img, atol=1e-4)


def test_config_checks_and_a_pen_readers_file_stays_as_it_was():
    pen = RecognizerConfig(alphabet=ALPHA)
    assert pen.input == "pen" and "input" not in pen.to_dict() and "height" not in pen.to_dict()
    image = RecognizerConfig(alphabet=ALPHA, input="image", height=32, px_per_unit=0.2)
    assert RecognizerConfig.from_dict(image.to_dict()) == image
    with pytest.raises(GenseqError, match="reads pen or image"):
        RecognizerConfig(alphabet=ALPHA, input="ink")
    with pytest.raises(GenseqError, match="height of 16 to 128"):
        RecognizerConfig(alphabet=ALPHA, input="image", height=8)
    with pytest.raises(GenseqError, match="must be a whole number"):
        RecognizerConfig.from_dict({**image.to_dict(), "height": 32.5})


def test_image_reader_frames_padding_and_impossible_alignments():
    torch.manual_seed(0)
    config = RecognizerConfig(alphabet=ALPHA, hidden=8, layers=1, input="image", height=16, px_per_unit=0.1)
    m = Recognizer(config).eval()
    for norm in m.norm:  # as if trained: padding would not stay 0 through these unless masked
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.5, 2)
        norm.bias.data.uniform_(-1, 1)
    rng = np.random.default_rng(0)
    lines = [_line("abc", rng), _line("ab", rng), _line("a", rng)]
    x, n = _batch(lines)
    logp = m(x, n)
    f = out_frames(config, x, n)
    assert logp.shape == (3, int(f.max()), len(ALPHA) + 1) and f.tolist() == sorted(f.tolist(), reverse=True)
    assert torch.allclose(logp.exp().sum(-1), torch.ones(3, logp.shape[1]), atol=1e-5)
    text = torch.tensor([[3, 4, 5], [3, 4, 0], [3, 3, 3]])
    nll = m.nll(x, n, text, torch.tensor([3, 2, 3]))
    # A line one character wide has too few columns for 'aaa' (5 frames with blanks between): +inf.
    assert f[2] < 5 and nll[2] == float("inf") and torch.isfinite(nll[:2]).all()
    alone = m.nll(x[1:2, : len(lines[1])], n[1:2], text[1:2, :2], torch.tensor([2]))
    assert alone.item() == pytest.approx(nll[1].item(), rel=1e-6)  # a line reads the same alone
    # Training leaves such a line out of the loss and of the gradient.
    m.train()
    loss = ctc_nll(m(x, n), out_frames(config, x, n), text, torch.tensor([3, 2, 3]), zero_infinity=True)
    assert loss[2] == 0 and torch.isfinite(loss).all()
    loss.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)
    assert ctc_feasible(out_frames(config, x, n), text, torch.tensor([3, 2, 3])).tolist() == [True, True, False]
    # A dot, a single point, a line of nothing but one pen lift: each still a picture the reader reads.
    m.eval()
    tiny = [np.array([[0, 0, 0], [1, 1, 1]], np.float32), np.array([[0, 0, 1]], np.float32)]
    xt, nt = _batch(tiny)
    assert m(xt, nt).shape == (2, 1, len(ALPHA) + 1) and out_frames(config, xt, nt).tolist() == [1, 1]


GLYPHS = {  # pen positions of each character's one stroke, the characters 200 units apart
    "a": np.stack([60 * np.cos(np.linspace(0, 2 * np.pi, 12)), 60 * np.sin(np.linspace(0, 2 * np.pi, 12))], 1),
    "b": np.array([[0.0, 120.0], [0.0, 40.0], [0.0, -40.0], [0.0, -120.0]]),
    "c": np.array([[-60.0, 60.0], [0.0, -60.0], [60.0, 60.0]]),
    ".": np.array([[0.0, -60.0], [2.0, -60.0]]),
}


def _line(text: str, rng) -> np.ndarray:
    """Fake handwriting an image reader can learn: a stroke per character that
    looks like no other (a ring, a bar, a V, a dot), a space a wider gap."""
    pts, x, last = [], 0.0, np.zeros(2)
    for ch in text:
        x += 200.0
        if ch == " ":
            continue
        path = GLYPHS[ch] + (x, 0.0) + rng.normal(0, 4, GLYPHS[ch].shape)
        off = _stroke(np.concatenate([[last], path]))[1:]
        pts.append(off)
        last = path[-1]
    return np.concatenate(pts).astype(np.float32)


@pytest.fixture(scope="module")
def strokes_h5(tmp_path_factory):
    return fake_reading_file(tmp_path_factory.mktemp("img") / "s.h5", TEXTS, _line, seed=1)


def test_an_image_reader_learns_to_read_and_chooses(strokes_h5, tmp_path):
    run = tmp_path / "run"
    base = ["train", "recognizer", strokes_h5, "-o", run, "--input", "image", "--height", 16, "--px-per-unit", 0.04,
            "--hidden", 24, "--layers", 1, "--batch", 8, "--eval-every", 100, "--lr", 1e-2, "--warmup", 10,
            "--dropout", 0, "--no-augment", "-q"]
    r = invoke(*base, "--max-steps", 100)
    assert r.exit_code == 0, r.output
    ck = load_checkpoint(run / "best.pt", kind="recognizer")
    assert ck["config"]["input"] == "image" and ck["config"]["height"] == 16
    r = invoke("eval", "recognizer", run / "best.pt", strokes_h5, "--split", "test", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["cer"] < 0.25  # it learned to read the pictures
    # Resuming with another input is refused; fine-tuning keeps the model's input.
    r = invoke(*[a if a != "image" else "pen" for a in base], "--max-steps", 101, "--resume")
    assert r.exit_code == 1 and "--input pen (was image)" in r.output
    r = invoke("train", "recognizer", strokes_h5, "-o", tmp_path / "ft", "--init", run / "best.pt",
               "--input", "pen", "--max-steps", 1, "-q")
    assert r.exit_code == 1 and "--input pen (the model: image)" in r.output
    # Flags that size the other kind of reader are refused, not stored unused.
    r = invoke("train", "recognizer", strokes_h5, "-o", tmp_path / "p", "--height", 32, "--max-steps", 1, "-q")
    assert r.exit_code == 1 and "give --input image" in r.output
    r = invoke(*base[:4], tmp_path / "s", *base[5:], "--stride", 2, "--max-steps", 1)
    assert r.exit_code == 1 and "an image reader (--input image) has none" in r.output
    # As a judge of written lines: each text reads best on its own strokes.
    from genseq.hand.choose import read_scores
    from genseq.reader import load_recognizer
    m = load_recognizer(run / "best.pt")
    a, b = written_pair(_line, m.config.norm_std)
    s = read_scores(m, [a, b, a, b], ["cab a", "cab a", "abc a", "abc a"])
    assert s[0] > s[1] and s[3] > s[2]


def test_a_reader_of_pictures_reads_each_candidates_newest_word(strokes_h5, tmp_path, monkeypatch):
    """choose.scorer with `picture`: the pen reader's score plus log p(newest word | its
    picture), the word cut where the candidates' strokes part."""
    from genseq.hand import choose
    from genseq.hand.choose import _spelled, newest_word_scores, scorer
    from genseq.reader import load_recognizer
    run = tmp_path / "eye"
    r = invoke("train", "recognizer", strokes_h5, "-o", run, "--input", "image", "--height", 16, "--px-per-unit", 0.04,
               "--hidden", 24, "--layers", 1, "--batch", 8, "--eval-every", 100, "--lr", 1e-2, "--warmup", 10,
               "--dropout", 0, "--no-augment", "-q", "--max-steps", 100)
    assert r.exit_code == 0, r.output
    eye = load_recognizer(run / "best.pt")
    std = eye.config.norm_std
    rng = np.random.default_rng(3)
    shared = _line("ab ", rng)
    right, wrong = _line("c", rng), _line("a", rng)
    right[0, 0] += 400  # the jump over the space
    wrong[0, 0] += 400
    rows = [np.concatenate([shared, w]) for w in (right, wrong)]
    for p in rows:
        p[:, :2] /= np.asarray(std, np.float32)
    texts = ["ab c", "ab c"]
    assert np.all(newest_word_scores(eye, rows, texts) == 0)  # lowercase words are left to the pen reader
    pen = load_recognizer(run / "best.pt")  # any reader stands in for the pen reader here
    base = scorer(pen)(rows, texts)
    assert np.allclose(scorer(pen, picture=eye)(rows, texts), base)
    monkeypatch.setattr(choose, "PLAIN_WORD", set())  # from here every word is read as a picture
    got = newest_word_scores(eye, rows, texts)
    k = len(shared) - 1
    alone = _spelled(eye, [p[k:] for p in rows], ["c", "c"], None, 0.0)
    assert np.allclose(got, alone - alone.max())  # the best candidate keeps the pen reader's score
    assert got[0] == 0 and got[1] < 0  # the candidate whose last word is a 'c' reads as one
    both = newest_word_scores(eye, rows + rows[::-1], texts + ["ab a", "ab a"])  # two lines read in one batch
    assert np.allclose(both[:2], got, rtol=1e-5, atol=1e-4) and both[2] == 0 and both[3] < 0
    assert np.allclose(scorer(pen, picture=eye)(rows, texts), base + got)
    assert np.all(newest_word_scores(eye, rows[:1], texts[:1]) == 0)  # one candidate: nothing to choose


def test_write_refuses_a_picture_reader_that_reads_the_pen(tmp_path):
    from cli_checks import one_line_error
    from genseq.reader.api import DEFAULT_RECOGNIZER
    from genseq.models import __file__ as models_init
    from pathlib import Path
    pen = Path(models_init).parent / DEFAULT_RECOGNIZER
    one_line_error(invoke("write", "hi", "-o", tmp_path / "o.svg", "--picture-reader", pen),
                   "needs a reader of pictures")
    one_line_error(invoke("write", "hi", "-o", tmp_path / "o.svg", "--picture-reader", pen, "-k", 1),
                   "give --candidates 2 or more")
    assert not (tmp_path / "o.svg").exists()
