"""`genseq write` and `genseq show` to every output: SVG, animated SVG, plotter
SVG, PNG and PDF, chosen by flags and by the name of -o."""
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from genseq.cli import main

pytestmark = pytest.mark.slow  # CLI round trips with the bundled model
SVG = "{http://www.w3.org/2000/svg}"


def run(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    return r.exit_code, r.output


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """One short text written to every kind of file, with the same seed."""
    d = tmp_path_factory.mktemp("out")
    out = {}
    for name, extra in (("page.svg", []), ("page.png", ["--dpi", 192]), ("page.pdf", []),
                        ("anim.svg", ["--animate", "--speed", 2]), ("plot.svg", ["--plotter"])):
        code, text = run("write", "Ada 7:45", "-k", 1, "--seed", 4, "-o", d / name, *extra)
        assert code == 0, text
        out[name] = d / name
    return out


def test_png_and_pdf_by_suffix(written):
    png = written["page.png"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    svg = ET.parse(written["page.svg"]).getroot()
    width = int.from_bytes(png[16:20], "big")
    assert width == round(float(svg.get("width")) * 2)  # --dpi 192: two pixels per px
    assert written["page.pdf"].read_bytes()[:5] == b"%PDF-"


def test_animated_and_plotter_flavours(written):
    anim = written["anim.svg"].read_text()
    assert "@keyframes" in anim and "prefers-reduced-motion" in anim and "<script" not in anim
    plot = ET.parse(written["plot.svg"]).getroot()
    static = ET.parse(written["page.svg"]).getroot()
    assert plot.find(f"{SVG}rect") is None and static.find(f"{SVG}rect") is not None
    # The same seed, the same ink: the plotter file has a path per stroke of the static line.
    strokes = static.find(f".//{SVG}path").get("d").count("M")
    assert len(plot.findall(f".//{SVG}path")) == strokes


@pytest.mark.parametrize("args, message", [
    (["--animate", "-o", "x.png"], "an animated drawing is an SVG"),
    (["--plotter", "-o", "x.pdf"], "a plotter drawing is an SVG"),
    (["--animate", "--plotter"], "not both"),
    (["--animate", "--speed", 0], "--speed"),
    (["--speed", 2], "--speed works with --animate"),
])
def test_output_flags_that_do_not_fit(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code, text = run("write", "hi", "-k", 1, *args)
    assert code != 0 and message in text and "Traceback" not in text
    assert not list(tmp_path.iterdir())  # nothing written


def test_show_to_pdf_and_png(strokes_h5, tmp_path):
    code, text = run("show", strokes_h5, "-i", 0, "-i", 1, "-o", tmp_path / "lines.pdf")
    assert code == 0, text
    assert (tmp_path / "lines.pdf").read_bytes()[:5] == b"%PDF-"
    code, text = run("show", strokes_h5, "-o", tmp_path / "line.png", "--page-height", 160, "-i", 0, "-i", 1,
                     "-i", 2)
    assert code == 0, text
    pngs = sorted(tmp_path.glob("line-*.png"))
    assert len(pngs) >= 2 and all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)


def test_scribble_writes_svg_png_and_pdf_by_name(tmp_path):
    import torch
    from genseq.checkpoint import save_checkpoint
    from genseq.hand.model import HandwritingConfig, HandwritingModel
    torch.manual_seed(0)
    models = {}
    for kind in ("prediction", "synthesis"):
        config = HandwritingConfig(kind=kind, alphabet="ab ", hidden=8, layers=1, mixtures=2, window=2)
        models[kind] = tmp_path / f"{kind}.pt"
        save_checkpoint(models[kind], kind="handwriting", config=config.to_dict(), meta={},
                        model_state=HandwritingModel(config).state_dict())
    heads = {"s.svg": b"<svg", "s.png": b"\x89PNG\r\n\x1a\n", "s.pdf": b"%PDF-"}
    for name, head in heads.items():
        code, text = run("scribble", "-m", models["prediction"], "--lines", 2, "--steps", 30, "-o", tmp_path / name)
        assert code == 0, text
        assert (tmp_path / name).read_bytes().lstrip()[:len(head)] == head, name
    code, text = run("scribble", "-m", models["synthesis"], "-o", tmp_path / "t.svg")
    assert code != 0 and "needs a prediction model" in text
    code, text = run("scribble", "-m", models["prediction"], "-o", tmp_path / "t.gif")
    assert code != 0 and "Traceback" not in text and not (tmp_path / "t.gif").exists()
