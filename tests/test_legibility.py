"""samples/legibility.py: the reader-based legibility proxy counts what it says it counts."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from samples_scripts import load_sample

SCRIPT = Path(__file__).resolve().parent.parent / "samples" / "legibility.py"


def _module():
    return load_sample("legibility")


def test_score_counts_rare_characters_with_case_and_zero_folded():
    leg = _module()
    texts = ["Box 305 and fix 7.", "Zoe 12 and six 0."]
    reads = ["box 3o5 and fix 7.", "toe 17 and sit o"]
    r = leg.score(texts, reads, rare=True)
    # counted: line 1 "x", "3", "5", "x", "7" (the 0 folds into o); line 2 "z", "1", "2", "x"
    assert (r["chars"], r["read_right"], r["exact"]) == (9, 6, 1)
    c = leg.score(["Go home now."], ["Go hone now"], rare=False)
    assert (c["chars"], c["read_right"], c["exact"]) == (12, 10, 0)
    # the texts are fixed: the same lines for every model and seed
    assert leg.rare_lines(3) == leg.rare_lines(3) and len(set(leg.common_lines(5))) == 5
    assert all(set("xz0123456789") & set(t.lower()) for t in leg.rare_lines(20))


@pytest.mark.slow
def test_script_reads_the_bundled_model(tmp_path):
    out = tmp_path / "leg.json"
    r = subprocess.run([sys.executable, str(SCRIPT), "default", "--seeds", "1", "--lines", "2", "--threads", "1",
                        "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())["results"]["default"]["1"]
    for kind in ("rare", "common"):
        assert res[kind]["lines"] == 2 and 0 <= res[kind]["read_right"] <= res[kind]["chars"]
    assert "mean" in r.stdout
