"""samples/own_hand.py: the reader's CER on a writer's real lines reads them in the model's units."""

import numpy as np
from samples_scripts import load_sample


def _module():
    return load_sample("own_hand")


def test_read_real_reads_lines_given_in_data_units():
    oh = _module()
    hm = oh.load_hand_model(None)
    reader = oh.load_recognizer("default")
    text = "Keep calm and write on."
    lines = oh.write_handwriting(text, hm, oh.WriteOptions(seed=1))[1]
    std = np.asarray(hm.config.norm_std, np.float32)
    real = [(np.concatenate([ln.points[:, :2] * std, ln.points[:, 2:]], 1), ln.text) for ln in lines]
    assert oh.read_real(reader, real, hm.config) < 0.1  # the bundled writer's own line reads plainly
    assert oh.read_real(reader, [(p, "Quiet zebras vex me.") for p, _ in real], hm.config) > 0.5
    # the same line left in model units (not divided by the spread again) reads as something else
    unscaled = [(np.concatenate([p[:, :2] / std, p[:, 2:]], 1), t) for p, t in real]
    assert oh.read_real(reader, unscaled, hm.config) > 0.3


def test_two_runs_on_one_folder_do_not_overwrite_each_others_samples(tmp_path):
    import pytest
    oh = _module()
    held = oh.hold_dir(tmp_path)
    with pytest.raises(SystemExit, match="in use by another samples/own_hand.py run"):
        oh.hold_dir(tmp_path)
    held.close()
    oh.hold_dir(tmp_path).close()  # free again once the first run ends


def test_primed_raw_reports_ink_too_long_to_prime_as_refused(tmp_path):
    import json
    oh = _module()
    hm = oh.load_hand_model(None)
    # one line of tablet-like ink as recorded: 3,000 points for 20 characters
    t = np.linspace(0, 60, 3000)
    line = {"text": "twenty characters ok", "strokes": [[[float(x * 10), float(np.sin(x) * 50)] for x in t]]}
    mine = tmp_path / "mine.jsonl"
    mine.write_text(json.dumps(line) + "\n")
    r = oh.primed_raw(hm, oh.load_recognizer("default"), oh.WriteOptions(seed=1, style_file=mine), 1, {})
    assert "points" in r["refused"] and "cer" not in r
