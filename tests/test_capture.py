"""genseq capture without a browser: prompts, the session (file writing), the
HTTP endpoints (urllib against a real server on 127.0.0.1) and the CLI."""
import http.client
import json
import math
import signal
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner

import genseq.cli.capture  # noqa: F401  (registers the command even before cli/__init__ imports it)
from genseq.capture import CaptureOptions, CaptureSession, Limits, default_prompts, missing_chars, open_capture
from genseq.capture.prompts import MAX_PROMPT_CHARS, REQUIRED_CHARS, load_prompts, parse_prompts
from genseq.capture.session import BadLine, Stale
from genseq.cli import main
from genseq.errors import GenseqError
from genseq.strokes.jsonl import read_jsonl

PROMPTS = ["first prompt", "second prompt", "third prompt"]
# Two strokes, y downwards as on a screen: [x, y, t] and [x, y, t, pressure].
STROKES = [[[10, 50, 0.0], [20, 40, 0.016], [30, 60, 0.033]], [[40, 50, 0.5, 0.7], [45, 55, 0.52, 0.8]]]


def rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# -- prompts ------------------------------------------------------------------------
def test_default_prompts_cover_letters_digits_punctuation():
    prompts = default_prompts()
    assert missing_chars(prompts) == ""
    assert set(REQUIRED_CHARS) >= set("aZ09.,;:!?'\"-()")
    assert len(prompts) == len(set(prompts)) >= 20
    assert all(len(p) <= 80 for p in prompts)  # fits one line of handwriting


def test_parse_prompts_comments_blanks_repeats():
    assert parse_prompts("# c\n\n  one \ntwo\none\n") == ["one", "two"]
    assert missing_chars(["abc"]) == REQUIRED_CHARS.replace("a", "").replace("b", "").replace("c", "")
    with pytest.raises(GenseqError, match="no prompts"):
        parse_prompts("# only a comment\n\n")
    with pytest.raises(GenseqError, match=":2: prompt longer"):
        parse_prompts("ok\n" + "x" * (MAX_PROMPT_CHARS + 1))
    with pytest.raises(GenseqError, match="control"):
        parse_prompts("bell\x07")


def test_load_prompts_errors(tmp_path):
    with pytest.raises(GenseqError, match="no such file"):
        load_prompts(tmp_path / "missing.txt")
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(GenseqError, match="not UTF-8"):
        load_prompts(tmp_path / "bad.txt")
    (tmp_path / "mine.txt").write_text("Hello there\nGood bye\n", encoding="utf-8")
    assert load_prompts(tmp_path / "mine.txt") == ["Hello there", "Good bye"]


# -- the session ---------------------------------------------------------------------
def test_submit_appends_a_line_the_reader_accepts(tmp_path):
    out = tmp_path / "mine.jsonl"
    s = CaptureSession(out, PROMPTS)
    st = s.submit(0, "first prompt", STROKES)
    assert st["saved"] == 1 and st["lines"] == 1 and st["prompt"]["text"] == "second prompt"
    (row,) = rows(out)
    assert row["text"] == "first prompt" and row["strokes"] == STROKES  # raw, y downwards
    assert "y_up" not in row and row["id"].startswith("cap-")
    (sample,) = read_jsonl(out)
    assert sample.text == "first prompt" and len(sample.points) == 5
    # y flipped on reading: the first step goes UP on screen (50 -> 40), so +10 in y-up units.
    assert sample.points[1, 1] == pytest.approx(10.0)
    assert st["last"] == {"id": row["id"], "text": "first prompt", "strokes": [[p[:2] for p in s] for s in STROKES]}


@pytest.mark.parametrize("strokes, msg", [
    ([], "empty drawing"), (None, "empty drawing"), ([[]], "bad stroke"), ([[[1]]], "bad point"),
    ([[[1, 2, 3, 4, 5]]], "bad point"), ([[[1, "2"]]], "non-numeric"), ([[[True, 2]]], "non-numeric"),
    ([[[1, math.nan]]], "non-finite"), ([[[1, 2, math.inf]]], "non-finite"), ([[[1e9, 2]]], "out of range"),
])
def test_bad_lines_are_refused_and_nothing_is_written(tmp_path, strokes, msg):
    out = tmp_path / "mine.jsonl"
    s = CaptureSession(out, PROMPTS)
    with pytest.raises(BadLine, match=msg):
        s.submit(0, "first prompt", strokes)
    assert out.read_bytes() == b"" and s.state()["prompt"]["index"] == 0


def test_size_limits(tmp_path):
    s = CaptureSession(tmp_path / "m.jsonl", PROMPTS, Limits(max_strokes=2, max_points=4))
    with pytest.raises(BadLine, match="too many strokes"):
        s.submit(0, "first prompt", [[[0, 0]]] * 3)
    with pytest.raises(BadLine, match="too many points"):
        s.submit(0, "first prompt", [[[i, 0] for i in range(5)]])


def test_a_glitch_the_reader_would_skip_is_refused(tmp_path):
    s = CaptureSession(tmp_path / "m.jsonl", PROMPTS)
    jump = [[[i, 0] for i in range(40)] + [[5000, 0]]]
    with pytest.raises(BadLine, match="absurd jump.*write the line again"):
        s.submit(0, "first prompt", jump)


def test_a_prompt_written_on_two_lines_is_refused(tmp_path):
    """Priming and fine-tuning skip an entry of two lines of writing, so the page asks
    for the prompt again on one line, keeping the drawing; nothing is written."""
    s = CaptureSession(tmp_path / "m.jsonl", PROMPTS)
    word = lambda x0, y0: [[x0 + k, y0 - 8 * (k % 2)] for k in range(30)]  # y down: a zigzag 8 px tall
    first = [word(0, 100), word(40, 100), word(80, 100)]
    with pytest.raises(BadLine, match="more than one line of writing.*write the line again"):
        s.submit(0, "first prompt", first + [word(0, 140), word(40, 140)])  # back left, a line lower
    assert not (tmp_path / "m.jsonl").exists() or rows(tmp_path / "m.jsonl") == []
    s.submit(0, "first prompt", first + [word(120, 100)])
    assert [r["text"] for r in rows(tmp_path / "m.jsonl")] == ["first prompt"]


def test_stale_prompt_is_refused(tmp_path):
    out = tmp_path / "mine.jsonl"
    s = CaptureSession(out, PROMPTS)
    with pytest.raises(Stale):
        s.submit(1, "second prompt", STROKES)  # not the current prompt
    with pytest.raises(Stale):
        s.submit(0, "another text", STROKES)  # the page showed something else
    with pytest.raises(Stale):
        s.skip(2)
    assert out.read_bytes() == b""


def test_skip_puts_the_prompt_at_the_back(tmp_path):
    s = CaptureSession(tmp_path / "m.jsonl", PROMPTS)
    assert s.skip(0)["prompt"]["index"] == 1
    assert s.skip(1)["prompt"]["index"] == 2
    assert s.skip(2)["prompt"]["index"] == 0  # all skipped: the earliest skipped comes back first
    st = s.submit(0, "first prompt", STROKES)
    assert st["prompt"]["index"] == 1 and st["covered"] == 1


def test_redo_previous_line(tmp_path):
    out = tmp_path / "mine.jsonl"
    out.write_text('{"text": "kept from before", "strokes": [[[0, 0], [1, 1]]]}\n', encoding="utf-8")
    s = CaptureSession(out, PROMPTS)
    a = s.submit(0, "first prompt", STROKES)["last"]["id"]
    b = s.submit(1, "second prompt", STROKES)["last"]["id"]
    with pytest.raises(Stale):
        s.undo(a)  # only the last line can be taken back
    st = s.undo(b)
    assert st["prompt"]["text"] == "second prompt" and st["last"]["id"] == a and st["lines"] == 2
    assert [r["text"] for r in rows(out)] == ["kept from before", "first prompt"]
    st = s.undo(a)
    assert st["prompt"]["text"] == "first prompt" and st["last"] is None and st["saved"] == 0
    assert [r["text"] for r in rows(out)] == ["kept from before"]
    with pytest.raises(Stale):
        s.undo(a)


def test_redo_refused_when_another_program_appended(tmp_path):
    out = tmp_path / "mine.jsonl"
    s = CaptureSession(out, PROMPTS)
    a = s.submit(0, "first prompt", STROKES)["last"]["id"]
    with open(out, "a", encoding="utf-8") as fh:
        fh.write('{"text": "other", "strokes": [[[0, 0]]]}\n')
    before = out.read_bytes()
    with pytest.raises(Stale, match="another program"):
        s.undo(a)
    assert out.read_bytes() == before


def test_second_session_appends_and_goes_on(tmp_path):
    out = tmp_path / "mine.jsonl"
    CaptureSession(out, PROMPTS).submit(0, "first prompt", STROKES)
    first = out.read_bytes()
    s2 = CaptureSession(out, PROMPTS)
    st = s2.state()
    assert st["prompt"]["text"] == "second prompt" and st["lines"] == 1 and st["saved"] == 0 and st["covered"] == 1
    assert st["last"] is None  # lines of an earlier session cannot be taken back from here
    s2.submit(1, "second prompt", STROKES)
    assert out.read_bytes().startswith(first)
    assert [r["text"] for r in rows(out)] == ["first prompt", "second prompt"]
    assert len({r["id"] for r in rows(out)}) == 2


def test_every_prompt_written_starts_a_new_round(tmp_path):
    s = CaptureSession(tmp_path / "m.jsonl", PROMPTS[:2])
    s.submit(0, "first prompt", STROKES)
    assert s.submit(1, "second prompt", STROKES)["prompt"] == {"index": 0, "text": "first prompt", "times": 1}


def test_half_line_from_a_crash_stays_apart(tmp_path):
    out = tmp_path / "mine.jsonl"
    out.write_bytes(b'{"text": "ok", "strokes": [[[0, 0], [1, 1]]]}\n{"text": "cut of')
    CaptureSession(out, PROMPTS).submit(0, "first prompt", STROKES)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[1] == '{"text": "cut of' and json.loads(lines[2])["text"] == "first prompt"
    assert [x.text for x in read_jsonl(out)] == ["ok", "first prompt"]


def test_session_refuses_unwritable_targets(tmp_path):
    with pytest.raises(GenseqError, match="does not exist"):
        CaptureSession(tmp_path / "nope" / "m.jsonl", PROMPTS)
    with pytest.raises(GenseqError, match="is a folder"):
        CaptureSession(tmp_path, PROMPTS)
    for name, head in [("model.pt", b"PK\x03\x04\0\0"), ("data.h5", b"\x89HDF\r\n\x1a\n\0"), ("notes.txt", b"hello\n")]:
        f = tmp_path / name
        f.write_bytes(head)
        with pytest.raises(GenseqError, match="holds something other than JSON Lines"):
            CaptureSession(f, PROMPTS)
        assert f.read_bytes() == head
    for content in [b"", b"\n", b'{"text": "ok", "strokes": [[[0, 0], [1, 1]]]}\n']:
        (tmp_path / "mine.jsonl").write_bytes(content)
        CaptureSession(tmp_path / "mine.jsonl", PROMPTS)


# -- HTTP --------------------------------------------------------------------------------


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via an http_proxy


def call(srv, path, body=None, *, raw=None, headers=None, method=None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    hdrs = {"Content-Type": "application/json"} if data is not None else {}
    hdrs.update(headers or {})
    req = urllib.request.Request(srv.url.rstrip("/") + path, data=data, headers=hdrs, method=method)
    try:
        with _OPENER.open(req, timeout=10) as r:
            status, body, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        status, body, ctype = err.code, err.read(), err.headers.get("Content-Type", "")
    return status, (json.loads(body) if ctype.startswith("application/json") else body)


def test_http_page_and_state(tmp_path, serve):
    srv = serve(tmp_path / "m.jsonl", prompts=None)
    assert srv.server_address[0] == "127.0.0.1" and srv.port > 0
    status, page = call(srv, "/")
    assert status == 200 and b"<canvas id=\"pad\"" in page and b"/page.js" in page
    status, js = call(srv, "/page.js")
    assert status == 200 and b"pointerdown" in js
    status, st = call(srv, "/api/state")
    assert status == 200 and st["prompt"]["text"] == default_prompts()[0] and st["saved"] == 0
    assert call(srv, "/nothing")[0] == 404
    assert call(srv, "/api/submit")[0] == 405


def test_http_submit_skip_undo(tmp_path, serve):
    out = tmp_path / "m.jsonl"
    prompts = tmp_path / "p.txt"
    prompts.write_text("\n".join(PROMPTS), encoding="utf-8")
    srv = serve(out, prompts=prompts)
    status, st = call(srv, "/api/submit", {"index": 0, "text": "first prompt", "strokes": STROKES})
    assert status == 200 and st["saved"] == 1 and st["prompt"]["text"] == "second prompt"
    assert rows(out)[0]["strokes"] == STROKES
    status, st = call(srv, "/api/skip", {"index": 1})
    assert status == 200 and st["prompt"]["text"] == "third prompt"
    status, st = call(srv, "/api/undo", {"id": st["last"]["id"]})
    assert status == 200 and st["prompt"]["text"] == "first prompt" and out.read_bytes() == b""


def test_http_bad_requests_change_nothing(tmp_path, serve):
    out = tmp_path / "m.jsonl"
    srv = serve(out)
    good = {"index": 0, "text": default_prompts()[0], "strokes": STROKES}
    status, err = call(srv, "/api/submit", {**good, "strokes": []})
    assert status == 400 and "empty drawing" in err["error"]
    status, err = call(srv, "/api/submit", {**good, "index": 5})
    assert status == 409 and err["state"]["prompt"]["index"] == 0
    assert call(srv, "/api/submit", {**good, "index": "0"})[0] == 400
    assert call(srv, "/api/submit", raw=b"{not json")[0] == 400
    assert call(srv, "/api/submit", raw=b"[1]")[0] == 400
    assert call(srv, "/api/submit", raw=b'{"strokes": [[[1, NaN]]], "index": 0, "text": "%s"}'
                % good["text"].encode())[0] == 400
    assert call(srv, "/api/submit", good, headers={"Content-Type": "text/plain"})[0] == 415
    assert call(srv, "/api/submit", good, headers={"Origin": "http://evil.example"})[0] == 403
    assert call(srv, "/api/state", headers={"Host": "evil.example:80"})[0] == 403  # DNS rebinding
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)  # refused before the body is read
    conn.putrequest("POST", "/api/submit")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(9 * 1024 * 1024))
    conn.endheaders()
    assert conn.getresponse().status == 413
    conn.close()
    assert call(srv, "/api/undo", {"id": "cap-nothing"})[0] == 409
    assert out.read_bytes() == b""
    assert call(srv, "/api/submit", good, headers={"Origin": srv.url.rstrip("/")})[0] == 200
    assert len(rows(out)) == 1


def test_port_in_use(tmp_path, serve):
    srv = serve(tmp_path / "a.jsonl")
    with pytest.raises(GenseqError, match=f"port {srv.port} is in use"):
        open_capture(tmp_path / "b.jsonl", CaptureOptions(port=srv.port))


# -- CLI ------------------------------------------------------------------------------------
def test_cli_errors_are_one_line(tmp_path):
    r = CliRunner().invoke(main, ["capture", "-o", str(tmp_path / "m.jsonl"), "--prompts", str(tmp_path / "no.txt")])
    assert r.exit_code == 1 and r.output.strip().endswith("no.txt: no such file")
    r = CliRunner().invoke(main, ["capture", "-o", str(tmp_path / "x" / "m.jsonl"), "--no-browser"])
    assert r.exit_code == 1 and "does not exist" in r.output


@pytest.mark.slow
def test_cli_serves_until_ctrl_c(tmp_path, cli_process):
    out = tmp_path / "m.jsonl"
    prompts = tmp_path / "p.txt"
    prompts.write_text("\n".join(PROMPTS), encoding="utf-8")
    proc = cli_process("capture", "-o", out, "--prompts", prompts)
    line = proc.stdout.readline()
    assert line.startswith("capture page: http://127.0.0.1:"), line + proc.stderr.read()
    url = line.split()[2]

    class Srv:
        pass
    srv = Srv()
    srv.url = url
    assert call(srv, "/api/submit", {"index": 0, "text": "first prompt", "strokes": STROKES})[0] == 200
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped; 1 line saved" in rest
    assert "no prompt uses" in err and "no display" in err
    assert [r["text"] for r in rows(out)] == ["first prompt"]
