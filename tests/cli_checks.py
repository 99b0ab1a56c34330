"""What every CLI test of bad input checks (a helper module, not a test file)."""


def one_line_error(r, *needles):
    """A CliRunner result that failed with exactly one `Error` line (holding every needle) and no traceback."""
    assert r.exit_code != 0, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    errors = [line for line in r.output.strip().splitlines() if line.startswith("Error")]
    assert len(errors) == 1, r.output
    for n in needles:
        assert n in errors[0], errors[0]
    return errors[0]


def invoke(*args):
    """The CLI run in-process on `args` (each made a string)."""
    from click.testing import CliRunner
    from genseq.cli import main
    return CliRunner().invoke(main, [str(a) for a in args])
