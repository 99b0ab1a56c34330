"""The benchmark scripts run (tiny settings) and report what their README says they report.

Timings themselves differ from run to run; what is checked is that the figures
reported are the ones the raw times give (medians, ratios within a round,
rates that multiply back to the work done), and that the shapes are right."""
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow  # each test runs a benchmark script in a subprocess

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _run(script, *args, tmp_path):
    out = tmp_path / f"{script}.json"
    r = subprocess.run([sys.executable, str(BENCH / script), *map(str, args), "--threads", "1", "--json", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(out.read_text()), r.stdout


def _median_ratio(slow, fast):
    return statistics.median(a / b for a, b in zip(slow, fast))


def test_epoch_bench_times_a_full_pass_and_extrapolates_a_partial_one(tmp_path, strokes_h5):
    from genseq.strokes import StrokeDataset
    with StrokeDataset(strokes_h5) as ds:
        lengths = ds.split("train").lengths[:]
    full, text = _run("epoch_handwriting.py", strokes_h5, "--quick", "--batch", 2, tmp_path=tmp_path)
    g = full["genseq"]
    assert full["settings"]["lines"] == 6 and full["settings"]["batches_per_pass"] == 3
    assert g["batches_run"] == 3 and not g["extrapolated"]
    assert g["pass_seconds"] == g["seconds_run"]
    # Rates times the time give back the work: every target point of the 6 lines once.
    real = g["real_points_per_s"] * g["seconds_run"]
    padded = g["padded_points_per_s"] * g["seconds_run"]
    assert real == pytest.approx(int(lengths.sum()) - len(lengths))
    assert real <= padded + 1e-6 and padded <= len(lengths) * (int(lengths.max()) - 1) + 1e-6
    port = full["port"]
    assert port["batches_run"] == 2
    assert port["genseq_speedup"] == pytest.approx(port["seconds_run"] / port["genseq_seconds_same_batches"])
    assert port["genseq_seconds_same_batches"] < g["seconds_run"]  # 2 of the 3 batches
    assert f"{port['genseq_speedup']:,.3g}" in text and "x port" in text
    part, text = _run("epoch_handwriting.py", strokes_h5, "--quick", "--batch", 2, "--max-batches", 1,
                      "--port-batches", 0, tmp_path=tmp_path)
    p = part["genseq"]
    assert p["batches_run"] == 1 and p["extrapolated"]
    # The pass is extrapolated by the share of padded points run: the same padded points per pass.
    assert p["padded_points_per_s"] * p["pass_seconds"] == pytest.approx(padded)
    assert p["pass_seconds"] > p["seconds_run"]
    assert "port" not in part and "extrapolated" in text


def test_train_bench_reports_every_variant_against_the_port(tmp_path):
    r, _ = _run("train_handwriting.py", "--quick", "--no-memory", "--no-curve", tmp_path=tmp_path)
    S, train = r["settings"], r["train"]
    assert set(train) == {"port-fp32", "port-bf16", "genseq-fp32", "genseq-bf16"}
    for name, v in train.items():
        assert len(v["times"]) == S["repeats"]
        assert v["seconds_per_batch"] == pytest.approx(statistics.median(v["times"]))
        assert v["points_per_s"] * v["seconds_per_batch"] == pytest.approx(S["B"] * S["T"])
        assert v["speedup_vs_port_fp32"] == pytest.approx(_median_ratio(train["port-fp32"]["times"], v["times"]))
        same = train["port-" + name.split("-")[1]]["times"]
        assert v["speedup_vs_port_same_precision"] == pytest.approx(_median_ratio(same, v["times"]))
    assert train["port-fp32"]["speedup_vs_port_fp32"] == 1.0
    assert train["port-bf16"]["speedup_vs_port_same_precision"] == 1.0


def test_sample_bench_times_prepacked_unpacked_and_fp32_lines(tmp_path):
    r, text = _run("sample.py", "--quick", tmp_path=tmp_path)
    hand = r["hand_batch"]
    for name in ("bf16", "bf16_torch_step", "bf16_unpacked", "fp32"):
        assert len(hand[name]["times"]) == r["settings"]["repeats"]
        assert hand[name]["seconds"] == pytest.approx(statistics.median(hand[name]["times"]))
        assert len(hand[name]["points_per_line"]) == r["settings"]["lines"]
    # Prepacking changes no draw: the same lines, point for point counted.
    assert hand["bf16"]["points_per_line"] == hand["bf16_unpacked"]["points_per_line"]
    times = {name: hand[name]["times"] for name in ("bf16", "bf16_torch_step", "bf16_unpacked", "fp32")}
    assert hand["speedup_prepacked"] == pytest.approx(_median_ratio(times["bf16_unpacked"], times["bf16"]))
    assert hand["speedup_numpy_step"] == pytest.approx(_median_ratio(times["bf16_torch_step"], times["bf16"]))
    assert hand["speedup_bf16_vs_fp32"] == pytest.approx(_median_ratio(times["fp32"], times["bf16"]))
    assert f"prepacked vs not: {hand['speedup_prepacked']:.2f}x" in text
    assert f"numpy step vs torch step, same process: {hand['speedup_numpy_step']:.2f}x" in text


def test_write_cli_bench_compares_two_checkouts(tmp_path):
    r, text = _run("write_cli.py", BENCH.parent, "--quick", tmp_path=tmp_path)
    assert r["rounds"] == 1
    (only,) = r["texts"].values()
    times = only["times"]
    assert only["same_svg"] and len(times["this"]) == len(times["other"]) == 1
    assert only["ratio_other_over_this"] == pytest.approx(times["other"][0] / times["this"][0])
    assert f"{only['ratio_other_over_this']:.2f}x" in text and "same SVG" in text
    bad = subprocess.run([sys.executable, str(BENCH / "write_cli.py"), str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode != 0 and "has no cli.py" in bad.stderr


def test_reuse_bench_times_both_settings_and_counts_page_faults(tmp_path):
    r, text = _run("reuse_memory.py", "--quick", tmp_path=tmp_path)
    rounds = r["settings"]["rounds"]
    for name in ("reused", "fresh"):
        assert len(r[name]["times"]) == rounds
        assert r[name]["median_step_s"] == pytest.approx(statistics.median(r[name]["times"]))
        faults = r[name]["page_faults_per_step"] * rounds  # a count over the rounds
        assert faults == pytest.approx(round(faults))
    assert r["fresh_over_reused"] == pytest.approx(_median_ratio(r["fresh"]["times"], r["reused"]["times"]))
    assert f"fresh / reused, median within a round: {r['fresh_over_reused']:.3f}" in text


def test_own_hand_bench_times_the_fine_tune_and_three_ways_of_writing(tmp_path):
    import numpy as np
    rng = np.random.default_rng(0)
    mine = tmp_path / "mine.jsonl"
    with open(mine, "w") as fh:  # 8 lines of loops, a capture page's pixels
        for i in range(8):
            text = ["abc", "cab", "bca", "a b", "c a", "ab c", "ba", "cc"][i]
            t = np.linspace(0, 2 * np.pi, 30)
            strokes = [[[float(40 * k + 15 * np.cos(a) + rng.normal()), float(15 * np.sin(a))] for a in t]
                       for k in range(len(text))]
            fh.write(json.dumps({"text": text, "strokes": strokes}) + "\n")
    r, text = _run("own_hand.py", mine, "--quick", tmp_path=tmp_path)
    assert r["rounds"] == 1 and "fine-tune (the README's command)" in text
    tuned = torch.load(r["tuned"], map_location="cpu", weights_only=True)
    assert tuned["meta"]["init"] and tuned["meta"]["data"].endswith(".h5")  # a fine-tune ran and saved its model
    assert set(r["write_s"]) == {"default", "primed", "fine-tuned"}
    for way, ts in r["write_s"].items():
        assert r["ratio_over_default"][way] == pytest.approx(ts[0] / r["write_s"]["default"][0])
        assert f"{r['ratio_over_default'][way]:.2f}x" in text
    bad = subprocess.run([sys.executable, str(BENCH / "own_hand.py"), str(tmp_path / "none.jsonl")],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "no such file" in bad.stderr
