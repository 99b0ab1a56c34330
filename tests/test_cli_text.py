import json

from click.testing import CliRunner

from genseq.cli import main


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_end_to_end_data_train_sample_eval(tmp_path, text_file):
    h5 = tmp_path / "c.h5"
    r = _invoke("data", "text", text_file, "-o", h5, "--json")
    assert r.exit_code == 0, r.output
    run = tmp_path / "run"
    r = _invoke("train", "text", h5, "-o", run, "--layers", 1, "--hidden", 16, "--batch", 4, "--seq-len", 16,
                "--max-steps", 6, "--eval-every", 3, "-q")
    assert r.exit_code == 0, r.output
    ck = run / "best.pt"
    a = _invoke("sample", "-m", ck, "--prime", "The", "-n", 30, "--seed", 5)
    b = _invoke("sample", "-m", ck, "--prime", "The", "-n", 30, "--seed", 5)
    assert a.exit_code == 0 and a.output == b.output and a.output.startswith("The")
    r = _invoke("sample", "-m", ck, "-n", 10, "--seed", 1, "--num", 2, "--top-k", 3, "--top-p", 0.9)
    assert r.exit_code == 0 and r.output.count("\n\n") >= 1
    r = _invoke("eval", "text", ck, h5, "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert set(d) == {"nats_per_char", "bpc", "perplexity", "chars"} and d["chars"] > 0
    r = _invoke("eval", "text", ck, text_file, "--json")
    assert r.exit_code == 0 and 0.95 * len(text_file.read_text()) < json.loads(r.output)["chars"] < len(text_file.read_text())
    r = _invoke("train", "text", h5, "-o", run, "--layers", 1, "--hidden", 16, "--batch", 4, "--seq-len", 16,
                "--max-steps", 8, "--eval-every", 3, "-q", "--resume")
    assert r.exit_code == 0, r.output


def _one_line_error(r, *needles):
    assert r.exit_code != 0
    assert "Traceback" not in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    lines = [l for l in r.output.strip().splitlines() if l.startswith("Error")]
    assert len(lines) == 1, r.output
    for n in needles:
        assert n in lines[0], lines[0]


def test_bad_input_is_one_line_error(tmp_path, text_file):
    h5 = tmp_path / "c.h5"
    _invoke("data", "text", text_file, "-o", h5)
    _invoke("train", "text", h5, "-o", tmp_path / "run", "--layers", 1, "--hidden", 8, "--batch", 2,
            "--seq-len", 8, "--max-steps", 2, "-q")
    ck = tmp_path / "run" / "best.pt"
    _one_line_error(_invoke("sample", "-m", ck, "-t", 0), "temperature")
    _one_line_error(_invoke("sample", "-m", ck, "--top-p", 1.5), "top-p")
    _one_line_error(_invoke("sample", "-m", ck, "--prime", "Zq€"), "€")
    _one_line_error(_invoke("sample", "-m", tmp_path / "missing.pt"), "not found")
    _one_line_error(_invoke("sample", "-m", h5), "not a genseq model file")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    _one_line_error(_invoke("data", "text", empty, "-o", tmp_path / "e.h5"), "no text")
    _one_line_error(_invoke("data", "text", tmp_path / "nope.txt", "-o", tmp_path / "e.h5"), "no such file")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\x00abc")
    _one_line_error(_invoke("data", "text", bad, "-o", tmp_path / "e.h5"), "UTF-8", "--encoding bytes")
    _one_line_error(_invoke("train", "text", text_file, "-o", tmp_path / "r2", "-q"), "not an HDF5 file")
    _one_line_error(_invoke("eval", "text", ck, tmp_path / "nope.h5"), "no such file")


def test_fine_tune_a_model_on_new_text_with_its_vocabulary(tmp_path, text_file):
    h5 = tmp_path / "c.h5"
    _invoke("data", "text", text_file, "-o", h5)
    r = _invoke("train", "text", h5, "-o", tmp_path / "base", "--layers", 1, "--hidden", 12, "--batch", 2,
                "--seq-len", 8, "--max-steps", 2, "-q")
    assert r.exit_code == 0, r.output
    new = tmp_path / "new.txt"
    new.write_text("The line again, abc. " * 30, encoding="utf-8")
    r = _invoke("data", "text", new, "-o", tmp_path / "new.h5", "--vocab", tmp_path / "base" / "best.pt")
    assert r.exit_code == 0, r.output
    # the sizes come from the model file, whatever the flags say
    r = _invoke("train", "text", tmp_path / "new.h5", "-o", tmp_path / "ft", "--init", tmp_path / "base" / "best.pt",
                "--batch", 2, "--seq-len", 8, "--max-steps", 2, "-q")
    assert r.exit_code == 0, r.output


def test_fine_tune_refuses_size_flags_that_disagree_with_the_model(tmp_path, text_file):
    h5 = tmp_path / "c.h5"
    assert _invoke("data", "text", text_file, "-o", h5).exit_code == 0
    base = ["train", "text", h5, "--batch", 4, "--seq-len", 16, "--max-steps", 2, "-q"]
    assert _invoke(*base, "-o", tmp_path / "base", "--layers", 1, "--hidden", 16).exit_code == 0
    init = ["--init", tmp_path / "base" / "best.pt"]
    r = _invoke(*base, "-o", tmp_path / "ft1", *init, "--hidden", 32, "--layers", 1)
    _one_line_error(r, "--hidden 32 (the model: 16)", "keeps that model's sizes")
    assert "--layers" not in r.output  # the same value as the model's is fine
    r = _invoke(*base, "-o", tmp_path / "ft2", *init, "--hidden", 16)  # agreeing flags are accepted
    assert r.exit_code == 0, r.output


def test_fine_tune_may_change_dropout(tmp_path, text_file):
    from genseq.checkpoint import load_checkpoint
    h5 = tmp_path / "c.h5"
    assert _invoke("data", "text", text_file, "-o", h5).exit_code == 0
    base = ["train", "text", h5, "--batch", 4, "--seq-len", 16, "-q"]
    assert _invoke(*base, "-o", tmp_path / "base", "--layers", 2, "--hidden", 16, "--max-steps", 2).exit_code == 0
    ft = [*base, "-o", tmp_path / "ft", "--init", tmp_path / "base" / "best.pt", "--dropout", 0.3]
    r = _invoke(*ft, "--max-steps", 2)
    assert r.exit_code == 0, r.output
    ck = load_checkpoint(tmp_path / "ft" / "last.pt", kind="text")
    assert ck["config"]["dropout"] == 0.3 and ck["config"]["hidden"] == 16  # sizes from the model file
    assert _invoke(*ft, "--max-steps", 3, "--resume").exit_code == 0  # the same command resumes
    r = _invoke(*ft[:-2], "--max-steps", 4, "--resume")  # without the new dropout: another configuration
    _one_line_error(r, "differs")


def test_a_prime_longer_than_the_limit_is_one_line(tmp_path):
    from genseq.cli.text import MAX_PRIME_CHARS
    long = "a" * (MAX_PRIME_CHARS + 1)
    (tmp_path / "p.txt").write_text(long, encoding="utf-8")
    for args, flag in [(["--prime", long], "--prime:"), (["--prime-file", str(tmp_path / "p.txt")], "--prime-file:")]:
        r = CliRunner().invoke(main, ["sample", "-n", "1", *args])
        assert r.exit_code == 1 and "Traceback" not in r.output, r.output
        assert f"Error: {flag} longer than {MAX_PRIME_CHARS:,} characters" in r.output
