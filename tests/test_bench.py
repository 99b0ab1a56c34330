"""The benchmark scripts run (tiny settings) and report what their README says they report."""
import json
import subprocess
import sys
from pathlib import Path

from test_hand_train import strokes_h5  # noqa: F401  (fixture)

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _run(script, *args, tmp_path):
    out = tmp_path / f"{script}.json"
    r = subprocess.run([sys.executable, str(BENCH / script), *map(str, args), "--threads", "1", "--json", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(out.read_text()), r.stdout


def test_epoch_bench_times_a_full_pass_and_extrapolates_a_partial_one(tmp_path, strokes_h5):  # noqa: F811
    full, text = _run("epoch_handwriting.py", strokes_h5, "--quick", "--batch", 2, tmp_path=tmp_path)
    g = full["genseq"]
    assert full["settings"]["lines"] == 6 and full["settings"]["batches_per_pass"] == 3
    assert g["batches_run"] == 3 and not g["extrapolated"]
    assert g["pass_seconds"] == g["seconds_run"] > 0
    assert g["padded_points_per_s"] >= g["real_points_per_s"] > 0
    assert full["port"]["genseq_speedup"] > 0 and "x port" in text
    part, text = _run("epoch_handwriting.py", strokes_h5, "--quick", "--batch", 2, "--max-batches", 1,
                      "--port-batches", 0, tmp_path=tmp_path)
    g = part["genseq"]
    assert g["batches_run"] == 1 and g["extrapolated"] and g["pass_seconds"] > g["seconds_run"]
    assert "port" not in part and "extrapolated" in text


def test_train_bench_reports_every_variant_against_the_port(tmp_path):
    r, _ = _run("train_handwriting.py", "--quick", "--no-memory", "--no-curve", tmp_path=tmp_path)
    assert set(r["train"]) == {"port-fp32", "port-bf16", "genseq-fp32", "genseq-bf16"}
    assert r["train"]["port-fp32"]["speedup_vs_port_fp32"] == 1.0
    assert all(v["points_per_s"] > 0 for v in r["train"].values())


def test_sample_bench_times_prepacked_unpacked_and_fp32_lines(tmp_path):
    r, text = _run("sample.py", "--quick", tmp_path=tmp_path)
    hand = r["hand_batch"]
    for name in ("bf16", "bf16_torch_step", "bf16_unpacked", "fp32"):
        assert len(hand[name]["times"]) == r["settings"]["repeats"] and hand[name]["seconds"] > 0
        assert len(hand[name]["points_per_line"]) == r["settings"]["lines"]
    # Prepacking changes no draw: the same lines, point for point counted.
    assert hand["bf16"]["points_per_line"] == hand["bf16_unpacked"]["points_per_line"]
    assert hand["speedup_prepacked"] > 0 and "prepacked vs not" in text
    assert hand["speedup_numpy_step"] > 0 and "numpy step vs torch step" in text


def test_write_cli_bench_compares_two_checkouts(tmp_path):
    r, text = _run("write_cli.py", BENCH.parent, "--quick", tmp_path=tmp_path)
    (only,) = r["texts"].values()
    assert only["same_svg"] and len(only["times"]["this"]) == len(only["times"]["other"]) == 1
    assert only["ratio_other_over_this"] > 0 and "same SVG" in text
    bad = subprocess.run([sys.executable, str(BENCH / "write_cli.py"), str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode != 0 and "has no cli.py" in bad.stderr


def test_reuse_bench_times_both_settings_and_counts_page_faults(tmp_path):
    r, text = _run("reuse_memory.py", "--quick", tmp_path=tmp_path)
    for name in ("reused", "fresh"):
        assert len(r[name]["times"]) == r["settings"]["rounds"] and r[name]["median_step_s"] > 0
        assert r[name]["page_faults_per_step"] >= 0
    assert r["fresh_over_reused"] > 0 and "fresh / reused" in text
