"""Hostile files and clients, each built here: special files where an output or
an input is expected (devices, FIFOs, sockets, folders, symlinks), endless
inputs (/dev/zero), archive and XML bombs, numbers beyond a float, and a
capture client without the key or one that sends a byte now and then.

Each must end in one `Error: ...` line and a non-zero exit, or a clean counted
skip: never a traceback, a hang, lost data or unbounded memory (peak RSS is
measured in a fresh process where memory is the point). Tests that need
mknod (a character device) run only as root."""
import io
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from genseq import web
import genseq.cli.capture  # noqa: F401  (registers the command)
from genseq.atomic import output_target, write_text
from genseq.capture import CaptureOptions, CaptureSession, open_capture
from genseq.capture.session import BadLine, check_strokes
from genseq.checkpoint import save_checkpoint
from genseq.cli import main
from genseq.errors import GenseqError
from genseq.hand.model import HandwritingConfig, HandwritingModel
from genseq.render.svg import save_pages
from genseq.strokes.build import Report
from genseq.strokes.clean import CleanOptions
from genseq.strokes.h5 import Sample, write_strokes
from genseq.strokes.iam import MAX_FILE_BYTES, iter_files
from genseq.strokes.inkml import MAX_SAMPLE_POINTS, Refused, convert_inkml, parse_inkml
from genseq.strokes.jsonl import _parse_line, parse_point, read_jsonl
from strokes_fixtures import LINE, ascii_txt, stroke_xml

ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="mknod needs root")
PROMPTS = ["first prompt", "second prompt", "third prompt"]
STROKES = [[[10, 50, 0.0], [20, 40, 0.016], [30, 60, 0.033]], [[40, 50, 0.5, 0.7], [45, 55, 0.52, 0.8]]]
HUGE = "1" + "0" * 400  # a 401-digit integer: a valid JSON number, too large for a float
TOO_LONG = "1" * 5001  # more digits than Python's int parser takes (4,300)
MEMORY_MB = 700  # a generous peak for a CLI process (torch alone is about 250 MB); the bugs took GBs


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def one_line_error(output: str, code: int, *needles) -> str:
    assert code != 0, output
    assert "Traceback" not in output, output
    errors = [line for line in output.strip().splitlines() if line.startswith("Error")]
    assert len(errors) == 1, output
    for n in needles:
        assert n in errors[0], errors[0]
    return errors[0]


def cli_error(r, *needles) -> str:
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    return one_line_error(r.output, r.exit_code, *needles)


# Peak RSS of this process image in MB: VmHWM starts afresh at exec, while
# ru_maxrss keeps the peak of the (pytest) process it was forked from.
PEAK_MB = textwrap.dedent("""
    def peak_mb():
        try:
            with open("/proc/self/status") as fh:
                return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:")) // 1024
        except (OSError, StopIteration):
            import resource
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
""")
_RSS = PEAK_MB + textwrap.dedent("""
    import runpy, sys
    sys.argv = ["genseq"] + sys.argv[1:]
    rc = 0
    try:
        runpy.run_module("genseq", run_name="__main__")
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    sys.stderr.write("\\nPEAK_RSS_MB %d\\n" % peak_mb())
    sys.exit(rc)
""")


def genseq(*args, timeout=120, stdin=subprocess.DEVNULL):
    """`genseq ARGS` in a fresh process: (exit code, output without the RSS line, peak RSS in MB)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", "DISPLAY": "", "WAYLAND_DISPLAY": ""}
    p = subprocess.run([sys.executable, "-c", _RSS, *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, env=env, stdin=stdin)
    out = p.stdout + p.stderr
    lines = out.strip().splitlines()
    assert lines and lines[-1].startswith("PEAK_RSS_MB"), out
    return p.returncode, "\n".join(lines[:-1]), int(lines[-1].split()[1])


def make_special(kind: str, path):
    """A special file at `path`: fifo, chardev (a null device, as root), socket or dir."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "chardev":
        if not ROOT:
            pytest.skip("mknod needs root")
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # what /dev/null is: writing to it is harmless
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(path))
        s.close()
    else:
        os.mkdir(path)
    return path


KIND_WORDS = {"fifo": "FIFO", "chardev": "character device", "socket": "socket", "dir": "folder"}
KIND_TEST = {"fifo": stat.S_ISFIFO, "chardev": stat.S_ISCHR, "socket": stat.S_ISSOCK, "dir": stat.S_ISDIR}


def hand_model(path):
    torch.manual_seed(0)
    config = HandwritingConfig(kind="synthesis", alphabet="abc ", hidden=8, layers=1, mixtures=2, window=2)
    save_checkpoint(path, kind="handwriting", config=config.to_dict(), meta={},
                    model_state=HandwritingModel(config).state_dict())
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return hand_model(tmp_path_factory.mktemp("model") / "syn.pt")


def _points():
    p = np.zeros((5, 3), np.float32)
    p[1:, :2] = 1.0
    p[-1, 2] = 1
    return p


WRITERS = {
    "svg": lambda p: save_pages(["<svg xmlns='http://www.w3.org/2000/svg'/>"], p),
    "text": lambda p: write_text(p, "new\n"),
    "h5": lambda p: write_strokes(p, {"train": [Sample("a", "ab", _points())]}, source="s", terms="t", units="u"),
    "checkpoint": lambda p: hand_model(p),
    "capture": lambda p: CaptureSession(p, PROMPTS).submit(0, "first prompt", STROKES),
}


# -- 3. outputs: special files are refused, symlinks write their target ------------------------------
@pytest.mark.parametrize("kind", ["fifo", "chardev", "socket", "dir"])
@pytest.mark.parametrize("writer", list(WRITERS))
def test_every_writer_refuses_a_special_output(tmp_path, writer, kind):
    out = make_special(kind, tmp_path / "o")
    with pytest.raises(GenseqError, match=KIND_WORDS[kind]):
        WRITERS[writer](out)
    assert KIND_TEST[kind](os.lstat(out).st_mode)  # still what it was
    assert sorted(os.listdir(tmp_path)) == ["o"]  # no temporary file left behind


@pytest.mark.parametrize("args", [["data", "inkml", "{d}", "-o", "{d}/x.h5"], ["data", "jsonl", "{d}", "-o", "{d}/x.h5"],
                                  ["data", "stats", "{d}"], ["eval", "handwriting", "{m}", "{d}"],
                                  ["train", "handwriting", "{d}", "-o", "{d}/run"]])
def test_a_folder_given_for_an_input_file_is_named_so(tmp_path, model, args):
    r = CliRunner().invoke(main, [a.format(d=tmp_path, m=model) for a in args])
    last = r.output.strip().splitlines()[-1]  # click's usage errors print the usage above it
    assert r.exit_code != 0 and last.startswith("Error:") and "Traceback" not in r.output, r.output
    assert "is a folder" in last or "is a directory" in last, last
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("writer", ["svg", "text", "h5", "checkpoint"])
def test_every_writer_replaces_a_symlinks_target_and_keeps_its_mode(tmp_path, writer):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "data.out"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    link = tmp_path / "link.out"
    link.symlink_to(target)
    WRITERS[writer](link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() != b"old" and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["link.out", "real"]
    assert os.listdir(tmp_path / "real") == ["data.out"]  # written beside the target, then renamed


def test_a_dangling_symlink_creates_its_target_and_a_link_to_a_fifo_is_refused(tmp_path):
    link = tmp_path / "link.svg"
    link.symlink_to(tmp_path / "made.svg")
    save_pages(["<svg/>"], link)
    assert link.is_symlink() and (tmp_path / "made.svg").read_text() == "<svg/>"
    # /dev/stdout is such a link: a pipe or a terminal behind it is refused, never written to or replaced
    fifo = make_special("fifo", tmp_path / "pipe")
    stdout_like = tmp_path / "stdout"
    stdout_like.symlink_to(fifo)
    with pytest.raises(GenseqError, match="FIFO"):
        output_target(stdout_like)
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(GenseqError, match="cannot write"):
        write_text(loop, "x")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["fifo", "chardev"])
def test_cli_outputs_refuse_special_files(tmp_path, model, kind):
    node = make_special(kind, tmp_path / "node")
    cli_error(run("write", "ab", "-m", model, "-o", node), KIND_WORDS[kind])
    cli_error(run("export", model, node), KIND_WORDS[kind])
    (tmp_path / "in.jsonl").write_text(json.dumps({"text": "ab", "strokes": [[[0, 0], [1, 1], [2, 0]]]}) + "\n")
    cli_error(run("data", "jsonl", tmp_path / "in.jsonl", "-o", node), KIND_WORDS[kind])
    code, out, _ = genseq("capture", "-o", node, "--no-browser", timeout=60)  # a FIFO must not hang it
    one_line_error(out, code, KIND_WORDS[kind])
    assert KIND_TEST[kind](os.lstat(node).st_mode)


def test_cli_write_through_a_symlink(tmp_path, model):
    target = tmp_path / "pages" / "hand.svg"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "hand.svg"
    link.symlink_to(target)
    r = run("write", "ab", "-m", model, "-o", link)
    assert r.exit_code == 0, r.output
    assert link.is_symlink() and "<svg" in target.read_text()


# -- 4d. endless inputs: bounded reads, refused non-regular files --------------------------------------
@pytest.mark.slow
def test_write_from_dev_zero_is_refused_in_bounded_memory():
    code, out, peak = genseq("write", "-f", "/dev/zero", "-o", "/nonexistent-folder/x.svg")
    one_line_error(out, code, "more than 67,108,864 characters", "--max-text")
    assert peak < MEMORY_MB


@pytest.mark.slow
def test_sample_prime_file_from_dev_zero_is_refused():
    code, out, peak = genseq("sample", "--prime-file", "/dev/zero", "-n", "1")
    one_line_error(out, code, "--prime-file", "100,000 characters")
    assert peak < MEMORY_MB


@pytest.mark.slow
def test_capture_refuses_endless_prompts_and_a_device_output(tmp_path):
    code, out, _ = genseq("capture", "-o", tmp_path / "m.jsonl", "--prompts", "/dev/zero", "--no-browser", timeout=60)
    one_line_error(out, code, "/dev/zero", "larger than 4 MiB")
    code, out, _ = genseq("capture", "-o", "/dev/zero", "--no-browser", timeout=60)  # refused before any open
    one_line_error(out, code, "/dev/zero: is a character device")


def test_write_counts_a_long_text_without_keeping_it(model, tmp_path):
    r = run("write", "-m", model, "-o", tmp_path / "o.svg", "--max-text", 10, input="ab " * 1000)
    cli_error(r, "the text has 3,000 characters; the limit is 10")


# -- 4a-b, 7. numbers beyond a float; one point check for the page and the reader -------------------
def test_jsonl_huge_and_overlong_integers_are_counted_skips(tmp_path):
    lines = ['{"text": "ab", "strokes": [[[%s, 1], [2, 2]]]}' % HUGE,
             '{"text": "ab", "strokes": [[[1, 1, %s], [2, 2]]]}' % HUGE,  # in t
             '{"text": "ab", "strokes": [[[%s, 1], [2, 2]]]}' % TOO_LONG,
             '{"text": "ab", "strokes": [[[0, 0], [1, 1], [2, 0]]]}']
    f = tmp_path / "n.jsonl"
    f.write_text("\n".join(lines) + "\n")
    r = run("data", "jsonl", f, "-o", tmp_path / "n.h5")
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    assert "kept 1 lines, skipped 3" in r.output and "huge coordinate 2" in r.output and "invalid JSON 1" in r.output


def test_write_style_file_of_huge_numbers_is_one_line(tmp_path, model):
    f = tmp_path / "style.jsonl"
    f.write_text('{"text": "ab", "strokes": [[[%s, 1], [2, 2]]]}\n{"text": "ab", "strokes": [[[%s, 1]]]}\n'
                 % (HUGE, TOO_LONG))
    cli_error(run("write", "ab", "-m", model, "-o", tmp_path / "o.svg", "--style-file", f), "no usable lines")


def test_write_says_which_lines_of_a_style_file_are_left_out(tmp_path, model):
    import json
    word = lambda x0, y0: [[x0 + k, y0 - 8 * (k % 2)] for k in range(30)]  # y down: a zigzag 8 px tall
    line = [word(0, 100), word(40, 100), word(80, 100)]
    note = line + [word(0, 140), word(40, 140)]  # a second line under the first
    f = tmp_path / "style.jsonl"
    f.write_text(json.dumps({"text": "ab ab ab", "strokes": line}) + "\n"
                 + json.dumps({"text": "ab ab ab ab ab", "strokes": note}) + "\n")
    r = run("write", "ab", "-m", model, "-o", tmp_path / "o.svg", "--style-file", f, "--candidates", 1)
    assert r.exit_code == 0, r.output
    assert "1 line(s) left out (more than one line of writing 1); the others primed" in r.output
    f.write_text(json.dumps({"text": "ab ab ab", "strokes": line}) + "\n")
    r = run("write", "ab", "-m", model, "-o", tmp_path / "o.svg", "--style-file", f, "--candidates", 1)
    assert r.exit_code == 0 and "left out" not in r.output, r.output


def test_an_inkml_style_file_is_read_whole_only_up_to_a_bound(tmp_path, model, monkeypatch):
    import genseq.strokes.ownink as ownink
    f = tmp_path / "style.inkml"
    f.write_text('<ink xmlns="http://www.w3.org/2003/InkML"><annotation type="truth">ab</annotation>'
                 + "<trace>0 0, 1 1, 2 0</trace>" * 50 + "</ink>")
    monkeypatch.setattr(ownink, "MAX_INKML_BYTES", f.stat().st_size - 1)
    cli_error(run("write", "ab", "-m", model, "-o", tmp_path / "o.svg", "--style-file", f), "may have at most")
    assert not (tmp_path / "o.svg").exists()


def test_write_style_file_bounds_what_a_small_file_can_cost(tmp_path, model):
    import json
    stroke = [[i * 3, (i % 5) * 2] for i in range(40)]
    long_text = tmp_path / "long.jsonl"  # 1 MB that would prime with 10 million points
    long_text.write_text(json.dumps({"text": "a" * 1_000_000, "strokes": [stroke]}) + "\n")
    cli_error(run("write", "ab", "-m", model, "-o", tmp_path / "o.svg", "--style-file", long_text),
              "text longer than 2,000 characters")
    long_text.write_text(json.dumps({"text": "a" * 500, "strokes": [stroke]}) + "\n")  # a style line's own bound
    cli_error(run("write", "ab", "-m", model, "-o", tmp_path / "o.svg", "--style-file", long_text),
              "text longer than 200 characters")
    dots = tmp_path / "dots.jsonl"  # 800 KB of one-point strokes
    dots.write_text('{"text": "ab", "strokes": [' + ",".join(["[[0, 0]]"] * 100_000) + "]}\n")
    cli_error(run("write", "ab", "-m", model, "-o", tmp_path / "o.svg", "--style-file", dots),
              "more than 10,000 strokes")
    from genseq.strokes.jsonl import read_jsonl
    many = tmp_path / "many.jsonl"
    many.write_text("".join(json.dumps({"text": f"ab {i}", "strokes": [stroke]}) + "\n" for i in range(50)))
    assert [s.text for s in read_jsonl(many, max_lines=3)] == ["ab 0", "ab 1", "ab 2"]


def test_capture_answers_a_huge_integer_and_an_overlong_one(tmp_path, serve):
    (tmp_path / "p.txt").write_text("\n".join(PROMPTS))
    srv = serve(tmp_path / "m.jsonl", prompts=tmp_path / "p.txt")
    for number, needle in [(HUGE, "huge coordinate"), (TOO_LONG, "invalid JSON")]:
        body = ('{"index": 0, "text": "first prompt", "strokes": [[[%s, 1], [2, 2]]]}' % number).encode()
        status, answer = call(srv, "api/submit", raw=body)
        assert status == 400 and needle in answer["error"]
    assert call(srv, "api/submit", {"index": 0, "text": "first prompt", "strokes": STROKES})[0] == 200
    assert len(read_jsonl(tmp_path / "m.jsonl")) == 1


numbers = st.one_of(st.integers(-10**420, 10**420), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0, 1e6, -1e6, 1e7, 10**400, float("nan")]), st.booleans(), st.text(max_size=2))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.lists(st.lists(st.lists(numbers, min_size=1, max_size=5), min_size=1, max_size=6), min_size=1, max_size=3))
def test_a_line_the_page_accepts_is_a_line_the_reader_accepts(strokes):
    try:
        pts = check_strokes(strokes)
    except BadLine:
        return
    for s in strokes:
        for p in s:
            parse_point(p)  # the page's check includes the reader's: this never raises here
    from genseq.strokes.jsonl import jsonl_line
    try:
        line = jsonl_line("ab", pts)
    except GenseqError:
        return  # e.g. an absurd jump: the page refuses it too, with this message (session.submit)
    _parse_line(line, "page", CleanOptions())


# -- 2, 4c. InkML: one trace referenced thousands of times, deep nesting ---------------------------
def _big_trace(n=8000):
    return ", ".join(f"{i} {i % 7}" for i in range(n))


@pytest.mark.slow
def test_inkml_trace_referenced_8000_times_in_one_group(tmp_path):
    doc = ('<ink><traceGroup><annotation type="truth">ab</annotation>' f'<trace xml:id="t0">{_big_trace()}</trace>'
           + '<traceView traceDataRef="t0"/>' * 8000 + "</traceGroup></ink>")
    ((_, text, strokes, _),) = parse_inkml(doc.encode(), "x")
    assert text == "ab" and len(strokes) == 1 and len(strokes[0]) == 8000  # each trace once per sample
    f = tmp_path / "ref.inkml"
    f.write_text(doc)
    code, out, peak = genseq("data", "inkml", f, "-o", tmp_path / "o.h5")
    assert code == 0 and "kept 1 lines" in out, out
    assert peak < MEMORY_MB


@pytest.mark.slow
def test_inkml_8000_groups_on_one_trace_are_skipped_beyond_the_files_points(tmp_path):
    doc = (f'<ink><trace xml:id="t0">{_big_trace()}</trace>'
           + '<traceGroup><annotation type="truth">ab</annotation><traceView traceDataRef="t0"/></traceGroup>' * 8000
           + "</ink>")
    found = parse_inkml(doc.encode(), "x")
    assert len(found) == 8000 and sum(not isinstance(s, Refused) for _, _, s, _ in found) == 2
    f = tmp_path / "groups.inkml"
    f.write_text(doc)
    code, out, peak = genseq("data", "inkml", f, "-o", tmp_path / "o.h5")
    assert code == 0 and "kept 2 lines, skipped 7998: too many points 7998" in out, out
    assert peak < MEMORY_MB


def test_inkml_sample_over_the_point_limit_is_skipped(tmp_path):
    big = tmp_path / "big.inkml"
    big.write_text(f'<ink><annotation type="truth">ab</annotation><trace>{_big_trace(MAX_SAMPLE_POINTS + 1)}</trace></ink>')
    good = tmp_path / "good.inkml"
    good.write_text('<ink><annotation type="truth">ab</annotation><trace>0 0, 1 1, 2 0</trace></ink>')
    rep = convert_inkml([big, good], tmp_path / "o.h5")
    assert rep.kept == 1 and dict(rep.skipped) == {"too many points": 1}


def test_inkml_5000_nested_groups_do_not_stop_the_conversion(tmp_path):
    deep = tmp_path / "deep.inkml"
    deep.write_text("<ink>" + "<traceGroup>" * 5000 + '<annotation type="truth">ab</annotation>'
                    "<trace>0 0, 1 1, 2 0</trace>" + "</traceGroup>" * 5000 + "</ink>")
    assert deep.stat().st_size > 100_000
    empty = tmp_path / "empty.inkml"
    empty.write_text("<ink>" + "<traceGroup>" * 5000 + "</traceGroup>" * 5000 + "</ink>")
    good = tmp_path / "good.inkml"
    good.write_text('<ink><annotation type="truth">ca</annotation><trace>0 0, 1 1, 2 0</trace></ink>')
    r = run("data", "inkml", deep, empty, good, "-o", tmp_path / "o.h5")
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    assert "kept 2 lines, skipped 1: no truth annotation 1" in r.output


# -- 5. iam-ondb / UNIPEN input folders and archives ----------------------------------------------------
def _iam_folder(tmp_path):
    ls, asc = tmp_path / "lineStrokes" / "a01" / "a01-000", tmp_path / "ascii" / "a01" / "a01-000"
    ls.mkdir(parents=True)
    asc.mkdir(parents=True)
    (ls / "a01-000u-01.xml").write_text(stroke_xml(LINE))
    (ls / "a01-000u-02.xml").symlink_to("/dev/zero")
    os.mkfifo(ls / "a01-000u-03.xml")
    (asc / "a01-000u.txt").write_text(ascii_txt(["a line"]))
    os.mkfifo(asc / "a01-000x.txt")
    return tmp_path / "lineStrokes", tmp_path / "ascii"


def test_iter_files_reads_only_regular_files(tmp_path):
    ls, asc = _iam_folder(tmp_path)
    report = Report()
    got = [(name, read()) for name, read in iter_files(ls, ".xml", report)]
    assert [n for n, _ in got] == ["a01/a01-000/a01-000u-01.xml"] and got[0][1].startswith(b"<?xml")
    assert dict(report.skipped) == {"not a regular file": 2}
    assert [n for n, _ in iter_files(ls, ".xml")] == ["a01/a01-000/a01-000u-01.xml"]  # no report: silently


@pytest.mark.slow
def test_iam_ondb_with_a_dev_zero_link_and_a_fifo_neither_hangs_nor_fills_memory(tmp_path):
    ls, asc = _iam_folder(tmp_path)
    code, out, peak = genseq("data", "iam-ondb", ls, asc, "-o", tmp_path / "o.h5", timeout=120)
    assert code == 0 and "kept 1 lines" in out and "Traceback" not in out, out
    assert peak < MEMORY_MB


class _Zeros(io.RawIOBase):
    def __init__(self, n):
        self.n = n

    def readable(self):
        return True

    def readinto(self, b):
        k = min(len(b), self.n)
        b[:k] = bytes(k)
        self.n -= k
        return k


@pytest.mark.slow
def test_a_huge_archive_member_is_skipped_in_bounded_memory(tmp_path):
    archive = tmp_path / "bomb.tar.gz"
    size = MAX_FILE_BYTES * 4  # 256 MB of zeros: about 250 KB compressed
    with tarfile.open(archive, "w:gz", compresslevel=1) as tf:
        small = stroke_xml(LINE).encode()
        for name, n, src in [("ls/a01-000u-01.xml", size, io.BufferedReader(_Zeros(size), 1 << 20)),
                             ("ls/a01-000u-02.xml", len(small), io.BytesIO(small))]:
            info = tarfile.TarInfo(name)
            info.size = n
            tf.addfile(info, src)
        link = tarfile.TarInfo("ls/a01-000u-03.xml")
        link.type, link.linkname = tarfile.SYMTYPE, "/dev/zero"
        tf.addfile(link)
    assert archive.stat().st_size < 2_000_000
    code = PEAK_MB + textwrap.dedent(f"""
        import json, time
        from genseq.strokes.build import Report
        from genseq.strokes.iam import iter_files
        t, report = time.monotonic(), Report()
        got = [(name, len(read())) for name, read in iter_files({str(archive)!r}, ".xml", report)]
        print(json.dumps([got, dict(report.skipped), time.monotonic() - t, peak_mb()]))
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    got, skipped, seconds, peak = json.loads(p.stdout)
    assert got == [["ls/a01-000u-02.xml", len(small)]]
    assert skipped == {"too large": 1, "not a regular file": 1}
    assert peak < 200 and seconds < 30, (peak, seconds)  # reading the member took 3.2 GB for 1.5 GB


# -- 6. the capture server: a key on every request; stalled clients; shutdown -------------------------


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(srv, route, body=None, *, raw=None, headers=None, base=None):
    """A request to `route` below the server's printed address (or below `base`)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    hdrs = {"Content-Type": "application/json"} if data is not None else {}
    hdrs.update(headers or {})
    req = urllib.request.Request((srv.url if base is None else base) + route, data=data, headers=hdrs)
    try:
        with _OPENER.open(req, timeout=10) as r:
            status, text, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        status, text, ctype = err.code, err.read(), err.headers.get("Content-Type", "")
    return status, (json.loads(text) if ctype.startswith("application/json") else text)


def test_every_request_needs_the_key(tmp_path, serve):
    out = tmp_path / "m.jsonl"
    srv = serve(out)
    key = srv.url.split("/")[3]
    assert len(key) >= 32 and srv.url == f"http://127.0.0.1:{srv.port}/{key}/"
    bare = f"http://127.0.0.1:{srv.port}/"
    for route in ["", "page.js", "api/state"]:
        status, answer = call(srv, route, base=bare)
        assert status == 403 and "key" in answer["error"]
        assert call(srv, route, base=bare + "x" * len(key) + "/")[0] == 403  # a wrong key of the right length
    state = call(srv, "api/state")[1]
    submit = {"index": state["prompt"]["index"], "text": state["prompt"]["text"], "strokes": STROKES}
    assert call(srv, "api/submit", submit, base=bare)[0] == 403
    assert out.read_bytes() == b""
    assert call(srv, "api/state", base=bare, headers={"X-Genseq-Token": key})[0] == 200  # as the page sends it
    assert call(srv, f"api/state?token={key}", base=bare)[0] == 200
    assert call(srv, "api/state", base=bare, headers={"X-Genseq-Token": key[:-1] + "?"})[0] == 403
    status, page = call(srv, "")
    assert status == 200 and b'src="./page.js"' in page
    status, js = call(srv, "page.js")
    assert status == 200 and b"X-Genseq-Token" in js
    assert call(srv, "api/submit", submit)[0] == 200 and len(read_jsonl(out)) == 1
    conn = socket.create_connection(("127.0.0.1", srv.port), timeout=10)  # /KEY without the slash
    conn.sendall(f"GET /{key} HTTP/1.0\r\nHost: 127.0.0.1:{srv.port}\r\n\r\n".encode())
    head = conn.recv(4096).decode()
    conn.close()
    assert head.startswith("HTTP/1.0 308") and f"Location: /{key}/" in head


def _drip(port, stop: threading.Event, every=0.3):
    """A client that sends one byte of a request now and then; returns when cut off or stopped."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        for b in b"GET /api/state HTTP/1.0\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 10_000:
            if stop.is_set():
                return "stopped"
            s.sendall(bytes([b]))
            time.sleep(every)
    except OSError:
        return "cut"
    finally:
        s.close()
    return "done"


@pytest.mark.slow
def test_a_dripping_client_is_cut_off_at_the_request_deadline(tmp_path, serve, monkeypatch):
    monkeypatch.setattr(web, "REQUEST_DEADLINE", 1.0)
    srv = serve(tmp_path / "m.jsonl")
    stop, result = threading.Event(), []
    t0 = time.monotonic()
    th = threading.Thread(target=lambda: result.append(_drip(srv.port, stop)))
    th.start()
    th.join(15)
    stop.set()
    assert result == ["cut"] and time.monotonic() - t0 < 6
    assert call(srv, "api/state")[0] == 200  # the server goes on


@pytest.mark.slow
def test_shutdown_does_not_wait_for_a_dripping_client(tmp_path):
    srv = open_capture(tmp_path / "m.jsonl", CaptureOptions())
    runner = threading.Thread(target=srv.run, daemon=True)
    runner.start()
    stop = threading.Event()
    dripper = threading.Thread(target=_drip, args=(srv.port, stop), daemon=True)
    dripper.start()
    time.sleep(1.0)
    t0 = time.monotonic()
    srv.shutdown()
    runner.join(30)
    took = time.monotonic() - t0
    stop.set()
    assert not runner.is_alive() and took < web.SHUTDOWN_GRACE + 3, took


@pytest.mark.slow
def test_ctrl_c_with_a_dripping_client_exits_within_seconds(tmp_path):
    code = "import genseq.cli.capture; from genseq.cli import main; main()"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DISPLAY": "", "WAYLAND_DISPLAY": ""}
    proc = subprocess.Popen([sys.executable, "-c", code, "capture", "-o", str(tmp_path / "m.jsonl"), "--no-browser"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    stop = threading.Event()
    try:
        line = proc.stdout.readline()
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        threading.Thread(target=_drip, args=(port, stop), daemon=True).start()
        time.sleep(1.5)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
        took = time.monotonic() - t0
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert "stopped; 0 lines saved" in rest and took < web.SHUTDOWN_GRACE + 5, took


def test_jsonl_special_files_and_endless_lines_are_refused_or_skipped(tmp_path, monkeypatch):
    from genseq.strokes import jsonl
    from genseq.strokes.build import Report
    from genseq.strokes.clean import CleanOptions
    with pytest.raises(GenseqError, match="not a regular file"):
        list(jsonl.iter_jsonl("/dev/zero", CleanOptions(), Report()))
    monkeypatch.setattr(jsonl, "MAX_LINE_BYTES", 1000)
    f = tmp_path / "long.jsonl"
    good = json.dumps({"text": "hi", "strokes": [[[0, 0], [1, 1]]]})
    f.write_text(good + "\n" + "x" * 5000 + "\n" + good + "\n")
    rep = Report()
    got = list(jsonl.iter_jsonl(f, CleanOptions(), rep))
    assert len(got) == 2 and rep.skipped == {"line longer than 0 MiB": 1}
