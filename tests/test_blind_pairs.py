"""samples/blind_pairs.py: blind sheets keep their key apart, and the tally unblinds it right."""
import json
from pathlib import Path

import pytest
from samples_scripts import load_sample

def _module():
    return load_sample("blind_pairs")


def test_tally_unblinds_each_pair_by_its_key(tmp_path):
    bp = _module()
    key = {"alike": 2, "pairs": [{"n": 1, "line": "1|0", "a": "A"}, {"n": 2, "line": "1|1", "a": "B"},
                                 {"n": 3, "line": "1|2", "a": "B"}, {"n": 4, "line": "1|3", "a": "A"}]}
    said = [{"n": 1, "a_exact": True, "b_exact": False, "better": "a"},   # A better, A exact
            {"n": 2, "a_exact": True, "b_exact": True, "better": "a"},    # a is B: B better
            {"n": 3, "a_exact": False, "b_exact": True, "better": "b"},   # b is A: A better, A exact
            {"n": 4, "a_exact": False, "b_exact": False, "better": "same"}]
    (tmp_path / "key.json").write_text(json.dumps(key))
    (tmp_path / "judgements.json").write_text(json.dumps(said))
    got = bp.tally(tmp_path)
    assert (got["B better"], got["B worse"], got["alike"]) == (1, 2, 3)
    assert (got["A exact"], got["B exact"]) == (3, 1)
    assert bp.sign_test(3, 0) == 0.125 and bp.sign_test(0, 0) == 1.0
    assert bp.sign_test(59, 51) == pytest.approx(0.252, abs=1e-3)


def test_options_are_parsed_to_their_fields_types():
    bp = _module()
    got = bp.changed_options(["bias=1.5", "candidates=4", "by_word=false", "picture_reader=p.pt",
                              "char_bias=xX=2.5"])
    assert got == {"bias": 1.5, "candidates": 4, "by_word": False, "picture_reader": Path("p.pt"),
                   "char_bias": ("xX", 2.5)}
    with pytest.raises(SystemExit):
        bp.changed_options(["seed=3"])  # the seeds are the sheets' own
    with pytest.raises(SystemExit):
        bp.changed_options(["colour=red"])


def test_make_draws_the_changed_pairs_and_keeps_the_key(tmp_path, monkeypatch):
    bp = _module()
    texts = tmp_path / "t.txt"
    texts.write_text("# a comment\nhi\nok\n")
    out = tmp_path / "out"
    monkeypatch.setattr("sys.argv", ["blind_pairs.py", "make", str(out), "--texts", str(texts), "--seeds", "1",
                                     "--b", "bias=4", "--b", "candidates=2"])
    bp.main()
    key = json.loads((out / "key.json").read_text())
    assert key["alike"] + len(key["pairs"]) == 2 and key["b"] == ["bias=4", "candidates=2"]
    assert {p["line"] for p in key["pairs"]} <= {"1|0", "1|1"} and key["pairs"]  # bias 4 changes the ink
    assert (out / "sheet-00.png").read_bytes()[:4] == b"\x89PNG"
    said = [{"n": p["n"], "a_exact": True, "b_exact": False, "better": "a"} for p in key["pairs"]]
    (out / "judgements.json").write_text(json.dumps(said))
    got = bp.tally(out)
    assert got["B better"] == sum(p["a"] == "B" for p in key["pairs"])
    assert got["A exact"] == sum(p["a"] == "A" for p in key["pairs"])
