"""The studio without a browser: the session's messages and downloads, and the
server's guards (key, Host, Origin), streaming and prompt shutdown."""
import http.client
import json
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from genseq.errors import GenseqError
from genseq.hand.api import WriteOptions, write_lines, wrap_lines
from genseq.render import PageOptions, render_pages
from genseq.studio import StudioServer, StudioSession
from genseq.studio.session import render_file

TEXT = "Two lines,\nsecond 12:45"


@pytest.fixture(scope="module")
def session(studio_server):
    return studio_server.session


def _write(session, **req):
    msgs = []
    job = session.write({"text": TEXT, "quality": "fast", "seed": 3, **req}, msgs.append)
    return job, msgs


def _lines_from(msgs, n):
    """Rebuild every line from the stream's deltas."""
    lines = [np.zeros((0, 3))] * n
    final = [False] * n
    for m in msgs:
        if m["type"] == "line":
            lines[m["line"]] = np.concatenate([lines[m["line"]][: m["from"]], np.asarray(m["points"]).reshape(-1, 3)])
            final[m["line"]] = m["final"]
    return lines, final


def test_write_streams_growing_lines_that_end_as_the_cli_writes_them(session):
    job, msgs = _write(session)
    assert msgs[0] == {"type": "start", "job": job, "lines": ["Two lines,", "second 12:45"]}
    assert msgs[-1]["type"] == "done" and msgs[-1]["job"] == job
    grows = [m for m in msgs if m["type"] == "line" and not m["final"]]
    assert len(grows) >= 4, "lines are shown while they are written, not only when finished"
    # Line 0 has ink before line 1 is finished.
    first_ink = next(k for k, m in enumerate(msgs) if m["type"] == "line" and m["line"] == 0 and m["points"])
    last_final = max(k for k, m in enumerate(msgs) if m["type"] == "line" and m["final"] and m["line"] == 1)
    assert first_ink < last_final
    lines, final = _lines_from(msgs, 2)
    assert all(final)
    # The same lines as `genseq write` (one batch, same seed): showing them draws no random numbers.
    hm = session.hm
    expect = write_lines(wrap_lines(TEXT, 40), hm, WriteOptions(seed=3, candidates=1))
    config = hm.config
    for got, want in zip(lines, expect):
        want_pts = want.points * np.r_[config.norm_std, 1] + np.r_[config.norm_mean, 0]
        np.testing.assert_allclose(got, want_pts, atol=0.006)
    # The layout streamed last is the download's own.
    layout = [m for m in msgs if m["type"] == "layout"][-1]
    # One layout per round of growing lines, not one per line.
    assert sum(m["type"] == "layout" for m in msgs) < sum(m["type"] == "line" for m in msgs)
    svg = session.download(job, "svg")[0].decode()
    assert f'height="{layout["height"]}"' in svg


def test_best_quality_streams_word_by_word(session):
    msgs = []
    session.write({"text": "one two three", "quality": "best", "seed": 1}, msgs.append)
    grows = [m for m in msgs if m["type"] == "line" and not m["final"]]
    assert len(grows) >= 1 and msgs[-1]["type"] == "done"


def test_downloads_are_the_same_drawing_in_every_format(session):
    job, _ = _write(session)
    svg, ctype, name = session.download(job, "svg")
    assert ctype == "image/svg+xml" and name == "handwriting.svg"
    root = ET.fromstring(svg)
    assert len(root.findall(".//{http://www.w3.org/2000/svg}path")) == 2  # one path per line
    assert session.download(job, "png")[0][:8] == b"\x89PNG\r\n\x1a\n"
    assert session.download(job, "pdf")[0][:5] == b"%PDF-"
    anim = session.download(job, "animated")[0].decode()
    assert "@keyframes" in anim and "prefers-reduced-motion" in anim
    plot = session.download(job, "plotter")[0].decode()
    assert "<rect" not in plot and "<text" not in plot
    with pytest.raises(GenseqError, match="no longer kept"):
        session.download("nope", "svg")
    with pytest.raises(GenseqError, match="unknown download"):
        session.download(job, "exe")


def test_the_bias_is_the_hand_s_unless_the_request_gives_one(session):
    from genseq.hand.api import DEFAULT_BIAS, OWN_HAND_BIAS
    d = session.info()["defaults"]
    assert (d["bias"], d["own_bias"], d["own_styles"]) == (DEFAULT_BIAS, OWN_HAND_BIAS, False)
    assert session.options({})[0].bias is None  # api.style_bias picks it by the hand
    assert session.options({"bias": 0.5})[0].bias == 0.5


def test_requests_the_cli_would_refuse_are_refused_in_its_words(session):
    with pytest.raises(GenseqError, match=r"cannot write 1 character\(s\): 'é'"):
        session.write({"text": "café", "quality": "fast"}, lambda m: None)
    with pytest.raises(GenseqError, match="the limit is 2,000"):
        session.write({"text": "a" * 2001}, lambda m: None)
    with pytest.raises(GenseqError, match="bias must be between"):
        session.write({"text": "a", "bias": 99}, lambda m: None)
    with pytest.raises(GenseqError, match="quality must be one of"):
        session.write({"text": "a", "quality": "ultra"}, lambda m: None)
    with pytest.raises(GenseqError, match="style must be"):
        session.write({"text": "a", "style": 999}, lambda m: None)
    with pytest.raises(GenseqError, match="no handwriting of yours"):
        session.options({"style": "mine"})
    with pytest.raises(GenseqError, match="not an SVG colour"):
        session.write({"text": "a", "color": "url(#x)"}, lambda m: None)


def test_my_handwriting_from_a_jsonl_file(tmp_path):
    s = StudioSession()
    try:
        # Two tiny synthetic lines, y down as a capture page writes them.
        lines = []
        for text in ("on", "no"):
            strokes = [[[x * 4.0 + 10 * i, 20 + 6 * np.sin(x / 2.0), x * 8.0] for x in range(30)] for i in range(2)]
            lines.append(json.dumps({"text": text, "strokes": strokes}))
        info = s.set_mine(("\n".join(lines) + "\n").encode(), "my/hand.jsonl")
        assert info["name"] == "hand.jsonl" and info["preview"].startswith("<svg")
        assert s.info()["mine"]["name"] == "hand.jsonl"
        msgs = []
        s.write({"text": "no", "style": "mine", "quality": "fast"}, msgs.append)
        assert msgs[-1]["type"] == "done"
        with pytest.raises(GenseqError, match="bad.jsonl") as err:
            s.set_mine(b"not json\n", "bad.jsonl")
        assert str(err.value).startswith("bad.jsonl: no usable lines") and "genseq-studio" not in str(err.value)
        # InkML, told by its name: the same two lines, as traces
        traces = "".join(f'<traceGroup><annotation type="truth">{text}</annotation>' + "".join(
            "<trace>" + ", ".join(f"{x * 4.0 + 10 * i} {20 + 6 * np.sin(x / 2.0)}" for x in range(30)) + "</trace>"
            for i in range(2)) + "</traceGroup>" for text in ("on", "no"))
        info = s.set_mine(f'<ink xmlns="http://www.w3.org/2003/InkML">{traces}</ink>'.encode(), "hand.inkml")
        assert info["name"] == "hand.inkml" and s.info()["mine"]["name"] == "hand.inkml"
    finally:
        s.close()


def test_text_models_are_told_apart_by_their_paths_and_checked_at_start(tmp_path):
    from genseq.checkpoint import bundled_path
    from genseq.studio.session import model_labels
    labels = model_labels(["runs/shakes/best.pt", "runs/mine/best.pt", "poems.pt", "runs/shakes/best.pt", "bundled"])
    assert list(labels) == ["shakes/best.pt", "mine/best.pt", "poems.pt", str(Path("bundled").resolve())]
    assert labels["mine/best.pt"] == "runs/mine/best.pt"
    text = bundled_path("shakespeare.pt")
    s = StudioSession(text_models=(text,))
    try:
        assert s.info()["text_models"] == ["bundled", "shakespeare.pt"]
    finally:
        s.close()
    for bad, why in ((tmp_path / "missing.pt", "not found"), (bundled_path("handwriting.pt"), "not a text model")):
        with pytest.raises(GenseqError, match=why):
            StudioSession(text_models=(text, bad))


def test_text_samples_stream_piece_by_piece(session):
    msgs = []
    session.sample({"prime": "ROMEO:", "length": 30, "seed": 2}, msgs.append)
    texts = [m["text"] for m in msgs if m["type"] == "text"]
    assert len(texts) == 31 and "".join(texts).startswith("ROMEO:") and msgs[-1] == {"type": "done"}
    with pytest.raises(GenseqError, match="unknown text model"):
        session.sample({"model": "x.pt"}, msgs.append)


def test_render_file_matches_render_pages():
    rng = np.random.default_rng(0)
    pts = np.c_[rng.normal(0, 5, (40, 2)), (np.arange(40) % 10 == 9)].astype(np.float32)
    page = PageOptions(background="white")
    assert render_file([pts], page, "svg").decode() == render_pages([pts], page)[0]


# -- the server ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(studio_server):
    return studio_server


def _open_write(srv, body: dict) -> http.client.HTTPResponse:
    """A write request whose streamed answer is read by the caller."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=120)
    conn.request("POST", f"/{srv.token}/api/write", body=json.dumps(body),
                 headers={"Host": f"127.0.0.1:{srv.port}", "Content-Type": "application/json"})
    return conn.getresponse()


def _request(srv, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    hdrs = {"Host": f"127.0.0.1:{srv.port}", **(headers or {})}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    conn.request(method, path, body=data, headers=hdrs)
    resp = conn.getresponse()
    out = resp.status, resp.read()
    conn.close()
    return out


def test_server_streams_ndjson_and_serves_downloads(server):
    key = server.token
    status, body = _request(server, "POST", f"/{key}/api/write", {"text": "hi there", "quality": "fast"})
    assert status == 200
    msgs = [json.loads(line) for line in body.decode().splitlines()]
    assert msgs[0]["type"] == "start" and msgs[-1]["type"] == "done"
    status, png = _request(server, "GET", f"/{key}/api/download?job={msgs[-1]['job']}&kind=png")
    assert status == 200 and png[:4] == b"\x89PNG"
    status, body = _request(server, "POST", f"/{key}/api/write", {"text": "ü"})
    assert status == 400 and "cannot write" in json.loads(body)["error"]
    status, body = _request(server, "GET", f"/{key}/api/info")
    assert status == 200 and len(json.loads(body)["styles"]) >= 1


@pytest.mark.parametrize("case", ["no key", "wrong key", "foreign host", "foreign origin"])
def test_server_refuses_requests_without_the_key_or_from_elsewhere(server, case):
    key = server.token
    path = {"no key": "/api/write", "wrong key": "/" + ("y" if key[0] == "x" else "x") + key[1:] + "/api/write"}.get(case, f"/{key}/api/write")
    headers = {"foreign host": {"Host": "evil.example:80"},
               "foreign origin": {"Origin": "http://evil.example"}}.get(case, {})
    status, body = _request(server, "POST", path, {"text": "hi", "quality": "fast"}, headers)
    assert status == 403, body
    assert "error" in json.loads(body)


@pytest.mark.slow
def test_shutdown_stops_a_long_write_promptly(session):
    srv = StudioServer(session, 0)
    th = threading.Thread(target=srv.serve, daemon=True)
    th.start()
    got = []

    def client():
        resp = _open_write(srv, {"text": "a long line " * 100, "quality": "fast"})
        try:
            got.append(resp.readline())
            resp.read()
        except (OSError, http.client.HTTPException):
            pass

    c = threading.Thread(target=client, daemon=True)
    c.start()
    deadline = time.monotonic() + 30
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    assert got and b'"start"' in got[0]
    t = time.monotonic()
    srv.shutdown()
    th.join(15)
    assert not th.is_alive() and time.monotonic() - t < 5


@pytest.mark.slow
def test_a_long_write_does_not_block_another_tab(server):
    """While one request writes a long text, another tab's requests are answered."""
    started = threading.Event()
    done = []

    def long_write():
        resp = _open_write(server, {"text": "slow words " * 60, "quality": "fast"})
        resp.readline()
        started.set()
        resp.read()
        done.append(time.monotonic())

    th = threading.Thread(target=long_write, daemon=True)
    th.start()
    assert started.wait(60)
    status, _ = _request(server, "GET", f"/{server.token}/api/info")
    status2, body = _request(server, "POST", f"/{server.token}/api/write", {"text": "quick", "quality": "fast"})
    answered = time.monotonic()
    assert status == 200 and status2 == 200 and b'"done"' in body
    th.join(120)
    assert done and answered < done[0]  # the short write finished while the long one was still writing


@pytest.mark.slow
def test_cli_serves_until_ctrl_c(cli_process):
    """`genseq studio` prints its address, answers, and exits 0 on Ctrl-C."""
    import signal
    import urllib.request
    proc = cli_process("studio", "--max-text", "100")
    line = proc.stdout.readline()
    assert line.startswith("studio: http://127.0.0.1:"), line + proc.stderr.read()
    url = line.split()[1]
    info = json.loads(urllib.request.urlopen(url + "api/info", timeout=30).read())
    assert info["max_text"] == 100 and info["text_models"] == ["bundled"]
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped" in rest and "no display" in err and "Traceback" not in err


def test_sigterm_stops_the_studio_as_ctrl_c_does(cli_process, tmp_path, monkeypatch):
    """Stopped by SIGTERM (a service manager, `timeout`), the studio exits 0 and leaves no temporary folder."""
    import signal
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    proc = cli_process("studio")
    line = proc.stdout.readline()
    assert line.startswith("studio: http://127.0.0.1:"), line + proc.stderr.read()
    assert [p.name for p in tmp_path.iterdir()][0].startswith("genseq-studio-")
    proc.send_signal(signal.SIGTERM)
    rest, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "stopped" in rest and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []


def _screen_line(text: str) -> list:
    """A captured line as the capture page sends it: a loop per letter, [x, y, t], y downwards."""
    t = np.linspace(0, 2 * np.pi, 16)
    return [[[float(14 * k + 5 * np.cos(a)), float(50 - 7 * np.sin(a)), float(k + a / 10)] for a in t]
            for k, ch in enumerate(text) if ch != " "]


def test_a_capture_page_beside_the_studio_records_the_lines_it_writes_with(tmp_path):
    """`genseq studio --capture mine.jsonl`: a capture page on its own address and key, linked
    from the page; what it records becomes the style "mine"; both stop together."""
    import socket

    from genseq.studio import StudioOptions, open_studio
    mine = tmp_path / "mine.jsonl"
    srv = open_studio(StudioOptions(capture=str(mine)))
    th = threading.Thread(target=srv.serve, daemon=True)
    th.start()
    try:
        key, cap = srv.token, srv.capture
        status, body = _request(srv, "GET", f"/{key}/api/info")
        info = json.loads(body)
        assert status == 200 and info["capture"] == cap.url and info["mine"] is None
        assert cap.port != srv.port and cap.token != key
        status, page = _request(cap, "GET", f"/{cap.token}/")
        assert status == 200 and b"<html" in page.lower()
        assert _request(cap, "GET", f"/{key}/api/state")[0] == 403  # the studio's key opens nothing there
        status, body = _request(srv, "POST", f"/{key}/api/mine", {"recorded": True})
        assert status == 400 and "no lines recorded in mine.jsonl yet" in json.loads(body)["error"]
        for _ in range(2):  # two prompts written on the capture page
            prompt = cap.session.state()["prompt"]
            cap.session.submit(prompt["index"], prompt["text"], _screen_line(prompt["text"]))
        status, body = _request(srv, "POST", f"/{key}/api/mine", {"recorded": True})
        got = json.loads(body)
        assert status == 200 and got["name"] == "mine.jsonl" and got["preview"].startswith("<svg")
        job, msgs = _write(srv.session, style="mine")
        assert msgs[-1]["type"] == "done"
    finally:
        srv.shutdown()
        th.join(15)
    assert not th.is_alive()
    with pytest.raises(OSError):  # the capture page stopped with the studio
        socket.create_connection(("127.0.0.1", cap.port), timeout=2).close()
    # Started again on the same file, the studio uses what it holds at once.
    again = open_studio(StudioOptions(capture=str(mine)))
    try:
        assert again.session.info()["mine"]["name"] == "mine.jsonl"
    finally:
        again.server_close()
    assert len(mine.read_text().splitlines()) == 2
