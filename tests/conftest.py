import os

import numpy as np
import pytest
import torch

# Tests are tiny; one thread avoids oversubscribing small CI machines.
torch.set_num_threads(1)
os.environ.setdefault("TQDM_DISABLE", "1")

TEXT = ("First line of a tiny corpus.\nThe second line, with punctuation!\n"
        "abcabcabc and again abcabcabc; numbers 0123456789.\n") * 40


@pytest.fixture
def text_file(tmp_path):
    p = tmp_path / "tiny.txt"
    p.write_text(TEXT, encoding="utf-8")
    return p


@pytest.fixture
def corpus(tmp_path, text_file):
    from genseq.text.corpus import build_corpus
    out = tmp_path / "tiny.h5"
    build_corpus([text_file], out, val_frac=0.1, test_frac=0.05)
    return out


def _loop_line(text: str, rng) -> np.ndarray:
    """Fake handwriting in the alphabet "abc .": one loop per character, pen up after each."""
    pts = []
    for ch in text:
        n = 6
        t = np.linspace(0, 2 * np.pi, n)
        r = 20 + 5 * "abc .".index(ch)
        seg = np.stack([np.cos(t) * r + rng.normal(0, 1, n) + 30, np.sin(t) * r + rng.normal(0, 1, n)], 1)
        off = np.zeros((n, 3), np.float32)
        off[:, :2] = np.diff(np.vstack([[0, 0], seg]), axis=0)
        off[-1, 2] = 1.0
        pts.append(off)
    return np.concatenate(pts).astype(np.float32)


@pytest.fixture
def strokes_h5(tmp_path):
    """A tiny stroke file: six lines of _loop_line ink per split (test_recognize.py has its own)."""
    from genseq.strokes import Sample, write_strokes
    rng = np.random.default_rng(0)
    texts = ["abc", "cab a", "b.c", "aa bb", "c a b", "abc."]
    splits = {s: [Sample(f"{s}{i}", t, _loop_line(t, rng)) for i, t in enumerate(texts)]
              for s in ("train", "val", "test")}
    out = tmp_path / "s.h5"
    write_strokes(out, splits, source="test", terms="none", units="px")
    return out


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for every browser test (tests/chromium.py)."""
    from chromium import launch, needs_browser, sync_playwright
    if sync_playwright is None or needs_browser.args[0]:
        pytest.skip(needs_browser.kwargs["reason"])
    with sync_playwright() as pw:
        b = launch(pw)
        yield b
        b.close()


@pytest.fixture(scope="module")
def studio_server():
    """A studio server with the bundled models, serving in a thread."""
    import threading

    from genseq.studio import StudioServer, StudioSession
    srv = StudioServer(StudioSession(), 0, owns_session=True)
    th = threading.Thread(target=srv.serve, daemon=True)
    th.start()
    yield srv
    srv.shutdown()
    th.join(10)


@pytest.fixture
def cli_process():
    """start(*args): `genseq ARGS` in its own process, which gets Ctrl-C as a terminal sends it
    (even when the tests run as a background job, whose shell starts children with SIGINT
    ignored); no display, one thread. Processes still running at the end are killed."""
    import signal
    import subprocess
    import sys
    procs = []

    def start(*args):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "DISPLAY": "", "WAYLAND_DISPLAY": ""}
        proc = subprocess.Popen([sys.executable, "-m", "genseq", *map(str, args)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        procs.append(proc)
        return proc
    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()


@pytest.fixture
def serve():
    """start(path, **CaptureOptions) -> a capture server on `path`, serving in a thread until the test ends."""
    import threading

    from genseq.capture import CaptureOptions, open_capture
    started = []

    def start(path, **kw):
        srv = open_capture(path, CaptureOptions(**kw))
        th = threading.Thread(target=srv.run, daemon=True)
        th.start()
        started.append((srv, th))
        return srv

    yield start
    for srv, th in started:
        srv.shutdown()
        th.join(10)
