"""`vpype genseq` (genseq/plot.py), run through vpype's own CLI, and the curve
flattening it uses (render.smooth.bezier_polyline)."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

vpype_cli = pytest.importorskip("vpype_cli")
import vpype as vp  # noqa: E402

from genseq.render.smooth import DOT_LENGTH, bezier_controls, bezier_polyline  # noqa: E402

# vpype chains commands: a command's options come before its TEXT argument.
QUICK = ["genseq", "-k", "1", "--seed", "1"]


def vpype(*args):
    return CliRunner().invoke(vpype_cli.cli, [str(a) for a in args])


def genseq_svg_strokes(text, width):
    """Each stroke of `genseq write`'s SVG (same seed and options, no margin) as
    its on-curve points, in the order the SVG draws them."""
    from genseq.hand.api import WriteOptions, write_handwriting
    from genseq.render import PageOptions
    page = PageOptions(width=width, margin=0.0, background=None)
    pages, _ = write_handwriting(text, None, WriteOptions(candidates=1, seed=1, page=page))
    assert len(pages) == 1
    strokes = []
    for d in re.findall(r'<path\b[^>]*\sd="([^"]+)"', pages[0]):
        for sub in d.split("M")[1:]:
            nums = np.array(re.findall(r"-?[\d.]+", sub), dtype=float)
            if "C" in sub:  # M x y C (c1 c2 p)...: the on-curve points are every third pair
                strokes.append(np.concatenate([nums[:2], nums[2:].reshape(-1, 6)[:, 4:].ravel()]).reshape(-1, 2))
            else:  # a dot (h) or a straight line (L)
                strokes.append(nums[:2].reshape(1, 2) if "h" in sub else nums.reshape(-1, 2))
    return strokes


def test_one_path_per_stroke_matching_genseq_write(tmp_path):
    out = tmp_path / "out.svg"
    r = vpype(*QUICK, "hello", "write", out)
    assert r.exit_code == 0, r.output
    assert out.read_text().count("<polyline") + out.read_text().count("<path") > 0

    doc = vpype_cli.execute("genseq -k 1 --seed 1 hello")
    lines = list(doc.layers[1])
    expected = genseq_svg_strokes("hello", 1000.0)
    assert len(lines) == len(expected) > 1  # as many pen strokes as genseq writes, one line each
    for line, pts in zip(lines, expected):  # in writing order, through the SVG's own points
        xy = np.stack([line.real, line.imag], axis=1)
        np.testing.assert_allclose(xy[0], pts[0], atol=0.006)
        np.testing.assert_allclose(xy[-1], pts[-1] + ([DOT_LENGTH, 0] if len(pts) == 1 else 0), atol=0.006)
        gap = np.abs(pts[:, None, :] - xy[None, :, :]).max(axis=2).min(axis=1)
        assert gap.max() < 0.006


def test_width_quantization_layer_and_linesort():
    width, q = vp.convert_length("3cm"), vp.convert_length("0.5mm")
    doc = vpype_cli.execute("genseq -k 1 --seed 1 --width 3cm -q 0.5mm -l 2 'hello there'")
    assert list(doc.layers) == [2]
    x0, y0, x1, y1 = doc.bounds()
    # The widest line fills the width (a spline may bulge a hair past its points).
    assert -0.5 <= x0 <= 0.5 and width - 0.5 <= x1 <= width + 0.5 and y0 >= -0.5
    assert max(np.abs(np.diff(line)).max() for line in doc.layers[2]) <= q + 1e-9

    sorted_doc = vpype_cli.execute("linesort", doc)
    assert len(sorted_doc.layers[2]) == len(doc.layers[2])


def test_gwrite(tmp_path):
    # gwrite is the vpype-gcode plugin: it has no default profile, and its
    # profiles flip y, which needs a page size (`layout` sets one).
    pytest.importorskip("vpype_gcode")
    out = tmp_path / "out.gcode"
    r = vpype(*QUICK, "hi", "layout", "a4", "linesort", "gwrite", "-p", "gcodemm", out)
    assert r.exit_code == 0, r.output
    assert "G01" in out.read_text()


def test_text_from_file(tmp_path):
    (tmp_path / "t.txt").write_text("hi\n", encoding="utf-8")
    doc = vpype_cli.execute(f"genseq -k 1 --seed 1 --file '{tmp_path / 't.txt'}' linesort")
    assert len(doc.layers[1]) > 0  # TEXT is the file name; linesort stays a command
    r = vpype("genseq", "--file", tmp_path / "missing.txt")
    assert r.exit_code == 1 and r.output.startswith("Error: cannot read ") and "Traceback" not in r.output


@pytest.mark.parametrize("args, message", [
    (["café"], "the model cannot write 1 character(s): 'é'"),
    (["-k", "0", "hi"], "--candidates must be between 1 and 16"),
    ([""], "nothing to write"),
    (["-q", "0", "hi"], "--quantization must be a positive length"),
    (["--line-height", "-3mm", "hi"], "--line-height must be a positive length"),
])
def test_bad_input_is_one_line(args, message):
    r = vpype("genseq", *args)
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit)  # no traceback
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {message}")


def test_plugin_module_does_not_import_torch():
    code = "import sys, vpype_cli, genseq.plot; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_vpype_command_line(tmp_path):
    exe = shutil.which("vpype", path=str(Path(sys.executable).parent)) or shutil.which("vpype")
    if exe is None:
        pytest.skip("no vpype executable")
    out = tmp_path / "letter.svg"
    r = subprocess.run([exe, *QUICK, "--style", "2", "Dear Ada,", "linesort", "write", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "<polyline" in out.read_text() or "<path" in out.read_text()
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert re.search(r"genseq\s+Handwrite TEXT", r.stdout)


# bezier_polyline ------------------------------------------------------------

def _de_casteljau(a, b, c, d, t):
    """Points of one cubic Bézier at parameters `t`, by de Casteljau (not the
    formula bezier_polyline uses)."""
    t = t[:, None]
    ab, bc, cd = a + t * (b - a), b + t * (c - b), c + t * (d - c)
    abc, bcd = ab + t * (bc - ab), bc + t * (cd - bc)
    return abc + t * (bcd - abc)


def test_bezier_polyline_follows_the_svg_curve():
    rng = np.random.default_rng(0)
    stroke = np.cumsum(rng.normal(0, 5, (30, 2)), axis=0)
    c1, c2 = bezier_controls(stroke)
    for step in (0.3, 2.0, 50.0):
        poly = bezier_polyline(stroke, step)
        assert np.hypot(*np.diff(poly, axis=0).T).max() <= step + 1e-9
        # every pen sample is kept, in order ...
        idx = [int(np.flatnonzero((poly == p).all(axis=1))[0]) for p in stroke]
        assert idx[0] == 0 and idx[-1] == len(poly) - 1 and idx == sorted(idx)
        # ... and the points between two samples lie on the SVG's curve between them
        for i in range(len(stroke) - 1):
            curve = _de_casteljau(stroke[i], c1[i], c2[i], stroke[i + 1], np.linspace(0, 1, 2001))
            between = poly[idx[i]:idx[i + 1] + 1]
            assert np.hypot(*(between[:, None] - curve[None]).transpose(2, 0, 1)).min(axis=1).max() < 0.01


def test_bezier_polyline_small_and_odd_strokes():
    assert bezier_polyline(np.zeros((0, 2)), 1.0).shape == (0, 2)
    np.testing.assert_array_equal(bezier_polyline(np.array([[3.0, 4.0]]), 1.0), [[3, 4], [3 + DOT_LENGTH, 4]])
    np.testing.assert_array_equal(bezier_polyline(np.array([[0, 0], [0, 0], [5, 5.0]]), 1.0), [[0, 0], [5, 5]])
    poly = bezier_polyline(np.array([[0, 0], [np.nan, 1], [1, 1], [2, 0], [np.inf, 3]]), 0.1)
    assert np.isfinite(poly).all() and (poly[0] == 0).all() and (poly[-1] == [2, 0]).all()
    with pytest.raises(ValueError):
        bezier_polyline(np.eye(3, 2), 0.0)
