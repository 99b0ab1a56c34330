"""genseq.render.plots (loss curves, attention heat map) and `genseq show`."""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from click.testing import CliRunner

from genseq.errors import GenseqError
from genseq.render.plots import heatmap_svg, loss_curve_svg, nice_ticks

NS = "{http://www.w3.org/2000/svg}"


def texts(root):
    return [t.text for t in root.iter(NS + "text")]


def test_nice_ticks():
    assert nice_ticks(0, 10, 5) == [0, 2, 4, 6, 8, 10]
    t = nice_ticks(0.37, 3.2, 5)
    assert t[0] >= 0.37 and t[-1] <= 3.2 and len(t) >= 3
    assert nice_ticks(1, 1) == [1] and nice_ticks(0, math.inf) == []


def test_loss_curve_with_missing_keys(tmp_path):
    records = [{"step": s, "train_loss": 3 - s / 100} for s in range(0, 100, 10)]
    records[3]["val_loss"] = 2.5
    records[7]["val_loss"] = 2.0
    records.append({"step": 100, "train_loss": float("nan")})  # skipped
    records.append({"event": "resume"})  # no metrics at all
    out = tmp_path / "loss.svg"
    doc = loss_curve_svg(records, out, title="run")
    assert out.read_text() == doc
    root = ET.fromstring(doc)
    assert root.tag == NS + "svg" and root.get("viewBox")
    lines = list(root.iter(NS + "polyline"))
    assert len(lines) == 2
    assert len(lines[0].get("points").split()) == 10 and len(lines[1].get("points").split()) == 2
    assert {"train_loss", "val_loss", "step", "run"} <= set(texts(root))
    for pl in lines:
        assert all(math.isfinite(float(v)) for v in pl.get("points").replace(",", " ").split())


def test_loss_curve_no_data_and_single_point():
    root = ET.fromstring(loss_curve_svg([], None))
    assert "no data" in texts(root)
    root = ET.fromstring(loss_curve_svg([{"step": 5, "val_loss": 1.0}], None))
    assert len(list(root.iter(NS + "circle"))) == 1


def test_heatmap(tmp_path):
    T, U = 40, 5
    u = np.arange(U)
    m = np.exp(-((u[None] - np.linspace(0, U - 1, T)[:, None]) ** 2))
    m[0, 0] = np.nan
    out = tmp_path / "w.svg"
    doc = heatmap_svg(m, out, "ab cd", title="window")
    assert out.read_text() == doc
    root = ET.fromstring(doc)
    labels = texts(root)
    assert {"a", "b", "\u2423", "c", "d", "window"} <= set(labels)
    rects = list(root.iter(NS + "rect"))
    assert 2 < len(rects) <= T * U + 2
    # long sequences are pooled to a bounded number of rows
    big = heatmap_svg(np.random.default_rng(0).random((5000, 3)), None, "abc")
    assert len(list(ET.fromstring(big).iter(NS + "rect"))) <= 480 * 3 + 2
    with pytest.raises(GenseqError):
        heatmap_svg(np.zeros((0, 3)), None)


def test_show_command(tmp_path):
    from genseq.cli.groups import main
    import genseq.cli.show  # noqa: F401  (registers the command)
    from genseq.strokes import Sample, write_strokes

    def line(n, seed):
        rng = np.random.default_rng(seed)
        p = np.zeros((n, 3), np.float32)
        p[1:, 0] = rng.uniform(5, 20, n - 1)
        p[1:, 1] = rng.normal(0, 30, n - 1)
        p[n // 2, 2] = p[-1, 2] = 1
        return p

    samples = [Sample(f"s{i}", f"text {i}", line(30 + i, i)) for i in range(3)]
    h5 = tmp_path / "tiny.h5"
    write_strokes(h5, {"train": samples[:2], "val": samples[2:]}, source="test", terms="test", units="test")
    out = tmp_path / "show.svg"
    res = CliRunner().invoke(main, ["show", str(h5), "--index", "0", "--index", "-1", "-o", str(out)])
    assert res.exit_code == 0, res.output
    root = ET.fromstring(out.read_text())
    assert texts(root) == ["s0: text 0", "s1: text 1"]
    assert len(list(root.iter(NS + "path"))) == 2
    res = CliRunner().invoke(main, ["show", str(h5), "--split", "val", "--index", "5", "-o", str(out)])
    assert res.exit_code != 0 and "out of range" in res.output
