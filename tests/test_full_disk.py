"""A full disk while saving is one line (`Error: no space left on device while
writing FILE; the previous file is unchanged`), exit status 1, the previous
file kept and no temporary file left, for every writer: torch.save (model
files) and HDF5 (datasets). The failing writes are real: they go to
/dev/full, whose every write fails with ENOSPC."""
import builtins
import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import genseq.atomic
from genseq.atomic import write_failure
from genseq.cli import main
from genseq.errors import GenseqError

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
TINY_TRAIN = ["--layers", "1", "--hidden", "8", "--batch", "4", "--seq-len", "16", "--eval-every", "2",
              "--warmup", "2", "--threads", "1", "--device", "cpu", "-q"]


def _no_space(out: Path) -> str:
    return f"Error: no space left on device while writing {out}; the previous file is unchanged"


def _leftovers(folder: Path) -> list:
    return sorted(p.name for p in folder.glob(".*.tmp"))


# --- write_failure: which exceptions are a failed write -----------------------------------

def _raised_while_handling(context: BaseException, err: BaseException) -> BaseException:
    try:
        try:
            raise context
        except BaseException:
            raise err
    except BaseException as chained:
        return chained


def test_write_failure_finds_the_os_error_a_library_wrapped(tmp_path):
    full = OSError(errno.ENOSPC, "No space left on device")
    assert write_failure(full, tmp_path / "t") is full
    torch_like = _raised_while_handling(full, RuntimeError("[enforce fail at inline_container.cc:672] . "
                                                           "unexpected pos 704 vs 598"))
    assert write_failure(torch_like, tmp_path / "t") is full
    hdf5 = RuntimeError("Can't close dataset (file write failed: time = Thu Nov 26 09:24:48 2026\n, "
                        "filename = 'x', file descriptor = 3, errno = 28, error message = 'No space left')")
    assert write_failure(hdf5, tmp_path / "t").errno == errno.ENOSPC


def test_write_failure_leaves_other_errors_alone(tmp_path):
    assert write_failure(GenseqError("bad input"), tmp_path / "t") is None
    assert write_failure(ValueError("x"), tmp_path / "t") is None
    assert write_failure(RuntimeError("CUDA out of memory"), tmp_path / "t") is None
    assert write_failure(RuntimeError("errno = 28 in a message of my own"), tmp_path / "t") is None
    # A GenseqError raised while handling an OSError is the error to report, not the OSError.
    assert write_failure(_raised_while_handling(OSError(errno.ENOSPC, "x"), GenseqError("y")), tmp_path) is None


@pytest.mark.parametrize("free, expected", [(0, errno.ENOSPC), (1 << 40, None)])
def test_torch_writing_to_a_name_fails_without_errno_the_free_space_decides(tmp_path, monkeypatch,
                                                                            free, expected):
    monkeypatch.setattr(genseq.atomic, "_free_bytes", lambda folder: free)
    err = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 19904 vs 19792")
    found = write_failure(err, tmp_path / "t")
    assert (found.errno if found else None) == expected


def test_atomic_path_reports_torch_s_error_on_a_full_disk_as_one_line(tmp_path, monkeypatch):
    target = tmp_path / "m.pt"
    target.write_bytes(b"old")
    monkeypatch.setattr(genseq.atomic, "_free_bytes", lambda folder: 0)
    with pytest.raises(GenseqError) as info:
        with genseq.atomic.atomic_path(target):
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 5248 vs 5136")
    assert f"Error: {info.value}" == _no_space(target)
    assert target.read_bytes() == b"old" and not _leftovers(tmp_path)


def test_a_write_error_is_one_line_even_when_the_library_s_message_is_not():
    err = OSError(errno.EFBIG, "Driver write request failed (file write failed: time = ...\n, errno = 27")
    assert str(genseq.atomic._explain(err, Path("o.h5"))) == "cannot write o.h5: File too large"


# --- model files: torch.save on a full disk -----------------------------------------------

@pytest.fixture
def full_disk_for_models(monkeypatch):
    """Model files (*.pt) are written to /dev/full; `buffering=0` makes torch's own
    writes fail (its RuntimeError), the default fails at the final flush."""
    def use(buffering: int = -1):
        def fake_open(file, mode="r", *args, **kwargs):
            if "w" in mode and ".pt." in os.path.basename(str(file)):
                return builtins.open("/dev/full", "wb", buffering=buffering)
            return builtins.open(file, mode, *args, **kwargs)
        monkeypatch.setattr(genseq.atomic, "open", fake_open, raising=False)
    return use


@pytest.fixture
def tiny_model(tmp_path):
    from genseq.checkpoint import save_checkpoint
    from genseq.text.model import CharRNN, CharRNNConfig
    config = CharRNNConfig(vocab_size=3, layers=1, hidden=32)
    path = tmp_path / "model.pt"
    save_checkpoint(path, kind="text", config=config.to_dict(), meta={"vocab": '["a", "b", "c"]', "encoding": "utf-8"},
                    model_state=CharRNN(config).state_dict())
    return path


@pytest.mark.parametrize("buffering", [0, -1], ids=["torch-write-fails", "flush-fails"])
def test_export_to_a_full_disk_is_one_line_and_keeps_the_old_file(tmp_path, tiny_model, full_disk_for_models,
                                                                  buffering):
    out = tmp_path / "small.pt"
    assert CliRunner().invoke(main, ["export", str(tiny_model), str(out)]).exit_code == 0
    before = out.read_bytes()
    full_disk_for_models(buffering)
    r = CliRunner().invoke(main, ["export", str(tiny_model), str(out)])
    assert r.exit_code == 1 and r.output.strip() == _no_space(out), r.output
    assert out.read_bytes() == before and not _leftovers(tmp_path)


def test_training_checkpoint_on_a_full_disk_is_one_line_and_keeps_last_pt(tmp_path, corpus,
                                                                          full_disk_for_models):
    out = tmp_path / "run"
    first = CliRunner().invoke(main, ["train", "text", str(corpus), "-o", str(out), "--max-steps", "2",
                                      *TINY_TRAIN])
    assert first.exit_code == 0, first.output
    before = (out / "last.pt").read_bytes()
    full_disk_for_models(0)
    r = CliRunner().invoke(main, ["train", "text", str(corpus), "-o", str(out), "--max-steps", "4",
                                  "--resume", *TINY_TRAIN])
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert r.output.strip().splitlines()[-1] in (_no_space(out / "last.pt"), _no_space(out / "best.pt"))
    assert (out / "last.pt").read_bytes() == before and not _leftovers(out)


# --- HDF5 datasets: in a child process, where a broken HDF5 would crash at exit -----------

# Runs the CLI with every HDF5 file created for writing pointed at /dev/full
# right after creation: HDF5's own writes fail with ENOSPC.
_CHILD = """
import os, sys, h5py
real = h5py.File
def on_full_disk(name, mode="r", *args, **kwargs):
    f = real(name, mode, *args, **kwargs)
    if mode == "w":
        full = os.open("/dev/full", os.O_RDWR)
        os.dup2(full, f.id.get_vfd_handle())
        os.close(full)
    return f
h5py.File = on_full_disk
from genseq.cli import main
main(sys.argv[1:], prog_name="genseq")
"""


def _text_input(folder: Path, kb: int) -> Path:
    from conftest import TEXT
    path = folder / "in.txt"
    path.write_text(TEXT * (kb * 1024 // len(TEXT) + 1), encoding="utf-8")
    return path


def _jsonl_input(folder: Path, lines: int) -> Path:
    from genseq.strokes.jsonl import jsonl_line
    path = folder / "in.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(lines):
            strokes = [[[x + 3.0 * k, 10.0 + (x * k) % 7] for x in range(20)] for k in range(6)]
            fh.write(jsonl_line(f"line {i} of my handwriting", strokes, id=f"me-{i}"))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("kind, size", [("text", 4), ("text", 2048), ("jsonl", 3), ("jsonl", 300)])
def test_dataset_on_a_full_disk_is_one_line_no_crash_and_keeps_the_old_file(tmp_path, kind, size):
    src = _text_input(tmp_path, size) if kind == "text" else _jsonl_input(tmp_path, size)
    out = tmp_path / "out.h5"
    out.write_bytes(b"the previous file")
    r = subprocess.run([sys.executable, "-c", _CHILD, "data", kind, str(src), "-o", str(out)],
                       env=ENV, capture_output=True, text=True, timeout=120)
    # Before the fix: h5py's "Exception ignored in ... __dealloc__" tracebacks and a segfault (-11).
    assert r.returncode == 1, r.stderr[-3000:]
    assert r.stderr.strip().splitlines()[-1] == _no_space(out), r.stderr[-3000:]
    assert r.stderr.count("Error") == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]  # (progress bars aside)
    assert out.read_bytes() == b"the previous file" and not _leftovers(tmp_path)


_CHILD_ATOMIC_H5 = """
import os, sys, numpy as np
from genseq.atomic_h5 import atomic_h5
from genseq.errors import GenseqError
where, out = sys.argv[1], sys.argv[2]
try:
    with atomic_h5(out) as f:
        full = os.open("/dev/full", os.O_RDWR)
        os.dup2(full, f.id.get_vfd_handle())
        os.close(full)
        data = f.create_dataset("x", shape=(1 << 20,), dtype=np.uint8, chunks=(1 << 16,))
        data[:] = 7
        if where == "body":
            f.flush()  # as when HDF5 writes part of its cache out mid-way
except GenseqError as err:
    print(err)
"""


@pytest.mark.slow
@pytest.mark.parametrize("where", ["body", "close"])
def test_atomic_h5_abandons_a_file_whose_write_failed(tmp_path, where):
    out = tmp_path / "x.h5"
    r = subprocess.run([sys.executable, "-c", _CHILD_ATOMIC_H5, where, str(out)], env=ENV,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr[-3000:]
    assert f"Error: {r.stdout.strip()}" == _no_space(out)
    assert not out.exists() and not _leftovers(tmp_path)


def test_atomic_h5_writes_a_readable_file(tmp_path):
    import h5py
    from genseq.atomic_h5 import atomic_h5
    with atomic_h5(tmp_path / "ok.h5") as f:
        f.create_dataset("x", data=[1, 2, 3])
    with h5py.File(tmp_path / "ok.h5", "r") as f:
        assert list(f["x"][()]) == [1, 2, 3]
    assert not _leftovers(tmp_path)


def test_ctrl_c_inside_a_writer_stays_a_keyboard_interrupt(tmp_path):
    # torch.save writing to a file object turns a KeyboardInterrupt in write() into its RuntimeError
    from genseq.atomic import atomic_open
    (tmp_path / "f").write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(tmp_path / "f", "wb") as fh:
            fh.write(b"new")
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt:
                raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")
    assert [p.name for p in tmp_path.iterdir()] == ["f"] and (tmp_path / "f").read_bytes() == b"old"
