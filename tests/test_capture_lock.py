"""Two capture sessions (or servers) on one JSONL file: appends and "redo
previous line" (undo) take the file's lock, undo cuts the file in place only
when its last line is still the one it wrote, so no line answered "saved" is
ever lost; the file keeps its symlink and its permissions."""
import json
import multiprocessing
import os
import stat
import threading
import time
import urllib.error
import urllib.request

import pytest

from genseq.capture import CaptureOptions, CaptureSession, open_capture
from genseq.capture.session import Stale
from genseq.strokes.jsonl import read_jsonl

PROMPTS = ["first prompt", "second prompt", "third prompt"]
STROKES = [[[10, 50, 0.0], [20, 40, 0.016], [30, 60, 0.033]], [[40, 50, 0.5, 0.7], [45, 55, 0.52, 0.8]]]
SECONDS = 2.0


def ids(path):
    return [json.loads(line).get("id") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _submit(s):
    p = s.state()["prompt"]
    return s.submit(p["index"], p["text"], STROKES)["last"]["id"]


def _writer(path, seconds, out):
    """Submit lines for `seconds`; the ids answered "saved" go to `out` (a queue)."""
    s = CaptureSession(path, PROMPTS)
    saved, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        saved.append(_submit(s))
    out.put(("kept", saved))


def _undoer(path, seconds, out):
    """Submit and take back lines for `seconds`; report the ids that stay in the file."""
    s = CaptureSession(path, PROMPTS)
    kept, undone, stale, end = [], 0, 0, time.monotonic() + seconds
    while time.monotonic() < end:
        sid = _submit(s)
        try:
            s.undo(sid)
            undone += 1
        except Stale:  # the other session appended after it: that line is not ours to cut
            kept.append(sid)
            stale += 1
    out.put(("undo", kept, undone, stale))


@pytest.mark.slow
def test_concurrent_submit_and_undo_in_two_processes_lose_nothing(tmp_path):
    path = tmp_path / "mine.jsonl"
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(path, SECONDS, q)), ctx.Process(target=_undoer, args=(path, SECONDS, q))]
    for p in procs:
        p.start()
    results = [q.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    kept = next(r[1] for r in results if r[0] == "kept")
    _, stayed, undone, stale = next(r for r in results if r[0] == "undo")
    assert len(kept) > 20 and undone > 20, (len(kept), undone, stale)  # they really did run together
    in_file = ids(path)
    assert sorted(in_file) == sorted(kept + stayed)  # every saved line is there; every undone one is gone
    assert [i for i in in_file if i in set(kept)] == kept  # in the order they were saved
    assert len(read_jsonl(path)) == len(in_file)  # and every line is whole


@pytest.mark.slow
def test_two_servers_on_one_file(tmp_path):
    path = tmp_path / "mine.jsonl"
    servers = [open_capture(path, CaptureOptions()) for _ in range(2)]
    threads = [threading.Thread(target=s.run, daemon=True) for s in servers]
    for t in threads:
        t.start()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(srv, route, body=None):
        req = urllib.request.Request(srv.url + route, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with opener.open(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def submit(srv):
        _, st = call(srv, "api/state")
        return call(srv, "api/submit", {"index": st["prompt"]["index"], "text": st["prompt"]["text"],
                                        "strokes": STROKES})

    answered, stayed, counts = [], [], {"undone": 0}
    end = time.monotonic() + SECONDS

    def b_loop():
        while time.monotonic() < end:
            status, st = submit(servers[1])
            assert status == 200, st
            answered.append(st["last"]["id"])

    def a_loop():
        while time.monotonic() < end:
            status, st = submit(servers[0])
            assert status == 200, st
            sid = st["last"]["id"]
            status, _ = call(servers[0], "api/undo", {"id": sid})
            if status == 200:
                counts["undone"] += 1
            else:
                assert status == 409
                stayed.append(sid)

    try:
        workers = [threading.Thread(target=f) for f in (a_loop, b_loop)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
    finally:
        for s, t in zip(servers, threads):
            s.shutdown()
            t.join(10)
    assert len(answered) > 10 and counts["undone"] > 5
    assert sorted(ids(path)) == sorted(answered + stayed)


def test_undo_keeps_the_symlink_and_the_permissions(tmp_path):
    real = tmp_path / "data" / "mine.jsonl"
    real.parent.mkdir()
    real.write_text('{"text": "kept", "strokes": [[[0, 0], [1, 1]]]}\n', encoding="utf-8")
    os.chmod(real, 0o600)
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    s = CaptureSession(link, PROMPTS)
    sid = _submit(s)
    s.undo(sid)
    _submit(s)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    assert len(ids(real)) == 2 and json.loads(real.read_text().splitlines()[0])["text"] == "kept"


def test_undo_refuses_a_forged_last_line_with_the_same_id(tmp_path):
    path = tmp_path / "mine.jsonl"
    s = CaptureSession(path, PROMPTS)
    sid = _submit(s)
    with open(path, "a", encoding="utf-8") as fh:  # same id, other strokes: not the line this page saved
        fh.write(json.dumps({"text": "first prompt", "strokes": [[[0, 0], [5, 5]]], "id": sid}) + "\n")
    before = path.read_bytes()
    with pytest.raises(Stale, match="another program"):
        s.undo(sid)
    assert path.read_bytes() == before


def test_undo_after_trailing_blank_lines_and_a_long_file(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps({"text": f"old {i}", "strokes": [[[0, 0], [i + 1, 1]]]}) + "\n"
                            for i in range(3000)), encoding="utf-8")  # longer than one read block
    s = CaptureSession(path, PROMPTS)
    sid = _submit(s)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("\n  \n")
    s.undo(sid)
    assert len(ids(path)) == 3000 and path.read_bytes().endswith(b"}\n")
