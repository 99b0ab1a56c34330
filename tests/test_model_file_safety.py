"""Hostile model files: each is refused with one line `Error: <path> is not a
valid genseq model file: <reason>` (Python: a GenseqError), before anything
the file claims is allocated.

Every file is built here: torch.save of a small state dict, then an edited
tensor (a stride-0 or overlapping view over a tiny storage), an edited config
or meta, or a rewritten zip (a compressed member: a zip bomb). The heavy
variants run once, in a child process whose peak memory is measured against
its own baseline (test_hostile_files_stay_within_memory_bound).
"""
import collections
import json
import os
import re
import struct
import subprocess
import sys
import textwrap
import warnings
import zipfile

import pytest
import torch
from click.testing import CliRunner

from genseq.checkpoint import load_checkpoint, save_checkpoint
from genseq.cli import main
from genseq.errors import GenseqError
from genseq.hand.model import HandwritingConfig, HandwritingModel
from genseq.text.model import CharRNN, CharRNNConfig
from cli_checks import one_line_error

INVALID = "is not a valid genseq model file: "


# -- building files ------------------------------------------------------------------------------

def text_file(path, vocab="abc", meta=None, **config):
    torch.manual_seed(0)
    config = CharRNNConfig(vocab_size=len(vocab), **{"layers": 1, "hidden": 8, **config})
    save_checkpoint(path, kind="text", config=config.to_dict(),
                    meta={"vocab": json.dumps(list(vocab)), "encoding": "utf-8", **(meta or {})},
                    model_state=CharRNN(config).state_dict())
    return path


def hand_file(path, **config):
    torch.manual_seed(0)
    config = HandwritingConfig(**{"alphabet": "abc ", "hidden": 8, "layers": 1, "mixtures": 2, "window": 2, **config})
    save_checkpoint(path, kind="handwriting", config=config.to_dict(), meta={"scale": 1.0},
                    model_state=HandwritingModel(config).state_dict())
    return path


def edit(src, dst, change):
    """A copy of model file `src` at `dst` with `change(payload)` applied, saved by plain torch.save."""
    payload = torch.load(src, weights_only=True)
    change(payload)
    torch.save(payload, dst)
    return dst


def repeated(shape):
    """A tensor of `shape` with stride 0 everywhere: 4 stored floats (16 bytes) seen as all of it."""
    return torch.zeros(4).as_strided(shape, (0,) * len(shape))


class _View:
    """Pickles as a tensor of any shape and stride over `storage`, even one that torch would not make."""

    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride)

    def __reduce__(self):
        return torch._utils._rebuild_tensor_v2, (*self.args, False, collections.OrderedDict())


def zip_bomb(src, dst, inflated: int):
    """`src` (a genseq file whose model is {"w": zeros(123457)}) with w claiming `inflated`
    bytes of zeros, stored deflated: a file of inflated/1000 bytes."""
    n = inflated // 4
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith("/data.pkl"):  # the storage's size and the tensor's shape
                assert data.count(b"J" + struct.pack("<i", 123457)) == 2
                data = data.replace(b"J" + struct.pack("<i", 123457), b"J" + struct.pack("<i", n))
            if info.filename.endswith("/data/0"):
                member = zipfile.ZipInfo(info.filename)
                member.compress_type = zipfile.ZIP_DEFLATED
                chunk = bytes(1 << 20)
                with zout.open(member, "w", force_zip64=True) as fh:
                    for _ in range(inflated >> 20):
                        fh.write(chunk)
            else:
                zout.writestr(info.filename, data)
    return dst


def bomb_source(path):
    config = CharRNNConfig(vocab_size=3, layers=1, hidden=8)
    torch.save({"format": "genseq", "version": 1, "kind": "text", "config": config.to_dict(),
                "meta": {"vocab": '["a", "b", "c"]'}, "model": {"w": torch.zeros(123457)}}, path)
    return path


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    d = tmp_path_factory.mktemp("good")
    (d / "data.txt").write_text("abcabc\n")
    return {"dir": d, "text": text_file(d / "text.pt"), "hand": hand_file(d / "hand.pt"),
            "bomb": bomb_source(d / "bomb_src.pt")}


def test_good_files_still_load_and_run(good, tmp_path):
    from genseq.hand.api import load_hand_model
    from genseq.text.api import load_text_model
    assert len(load_text_model(good["text"]).vocab) == 3
    assert load_hand_model(good["hand"]).config.norm_mean == (0.0, 0.0)
    r = run("sample", "-m", good["text"], "-n", "5", "--seed", "1")
    assert r.exit_code == 0, r.output
    r = run("export", good["text"], tmp_path / "e.pt")
    assert r.exit_code == 0 and load_text_model(tmp_path / "e.pt").vocab == load_text_model(good["text"]).vocab
    r = run("export", "default", tmp_path / "d.pt")  # as other commands name the bundled model
    assert r.exit_code != 0 and "exported already" in r.output and not (tmp_path / "d.pt").exists()


# -- 1. tensors whose shape and strides do not match their stored bytes -----------------------

@pytest.mark.parametrize("shape", [(20000, 20000), (10**6, 10**6)])
def test_a_zero_stride_tensor_is_refused_before_its_values_are_read(good, tmp_path, shape):
    p = edit(good["text"], tmp_path / "z.pt", lambda ck: ck["model"].__setitem__("decoder.bias", repeated(shape)))
    with pytest.raises(GenseqError, match=INVALID + r"the tensor model\.decoder\.bias has stride 0 on a dimension"):
        load_checkpoint(p)
    one_line_error(run("sample", "-m", p), str(p), INVALID, "stride 0")
    one_line_error(run("export", p, tmp_path / "out.pt"), INVALID, "stride 0")
    assert not (tmp_path / "out.pt").exists()
    one_line_error(run("eval", "text", p, good["dir"] / "data.txt"), INVALID, "stride 0")


def test_a_zero_stride_tensor_in_a_handwriting_model_and_in_training_state(good, tmp_path):
    p = edit(good["hand"], tmp_path / "z.pt",
             lambda ck: ck["model"].__setitem__("output.linear.bias", repeated((10**6, 10**6))))
    one_line_error(run("write", "ab", "-m", p, "--candidates", "1", "-o", tmp_path / "o.svg"), INVALID, "stride 0")
    one_line_error(run("eval", "handwriting", p, tmp_path / "none.h5"), INVALID, "stride 0")
    # Anywhere in the file: here in an optimizer state, which only --resume would read.
    p = edit(good["text"], tmp_path / "t.pt",
             lambda ck: ck.__setitem__("train", {"optimizer": {"state": {0: {"exp_avg": repeated((10**5, 10**5))}}}}))
    with pytest.raises(GenseqError, match=INVALID + r"the tensor train\.optimizer\.state\.0\.exp_avg has stride 0"):
        load_checkpoint(p)


def test_overlapping_strides_and_views_beyond_the_storage_are_refused(good, tmp_path):
    # (1000, 1000) with strides (1, 1) over 1999 stored floats: a million values from 8 kB.
    overlap = torch.zeros(1999).as_strided((1000, 1000), (1, 1))
    p = edit(good["text"], tmp_path / "o.pt", lambda ck: ck["model"].__setitem__("decoder.bias", overlap))
    with pytest.raises(GenseqError, match=INVALID + r".*decoder\.bias of shape \(1000, 1000\) has more values than"):
        load_checkpoint(p)
    one_line_error(run("sample", "-m", p), INVALID, "overlapping strides")
    # 1000 floats claimed over 4 stored ones (torch cannot make this tensor; the pickle can describe it).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TypedStorage is deprecated
        storage = torch.zeros(4)._typed_storage()
    p = edit(good["text"], tmp_path / "b.pt",
             lambda ck: ck["model"].__setitem__("decoder.bias", _View(storage, 0, (1000,), (1,))))
    with pytest.raises(GenseqError, match=INVALID + "a tensor's shape and strides reach beyond its stored data"):
        load_checkpoint(p)
    one_line_error(run("export", p, tmp_path / "out.pt"), INVALID, "beyond its stored data")


def test_one_stored_block_named_many_times_is_refused(good, tmp_path):
    # 100 names for one 2 MB fp16 block: 400 MB once converted to fp32 (each name its own copy).
    block = torch.zeros(1 << 20, dtype=torch.float16)
    p = edit(good["text"], tmp_path / "m.pt",
             lambda ck: ck["model"].update({f"copy{i}": block for i in range(100)}))
    assert p.stat().st_size < 3 << 20
    with pytest.raises(GenseqError, match=INVALID + r"its tensors claim 209,7\d\d,\d+ bytes of values "
                                                    r"from a file of 2,\d+,\d+ bytes"):
        load_checkpoint(p)
    one_line_error(run("export", p, tmp_path / "out.pt"), INVALID, "its tensors claim")


# -- 2. zip bombs ----------------------------------------------------------------------------------

def test_a_compressed_zip_member_is_refused_before_it_is_inflated(good, tmp_path):
    p = zip_bomb(good["bomb"], tmp_path / "bomb.pt", 8 << 20)
    assert p.stat().st_size < 100_000
    with pytest.raises(GenseqError, match=INVALID + r"its member \S+/data/0 is compressed .*8,388,608 bytes"):
        load_checkpoint(p)
    one_line_error(run("sample", "-m", p), str(p), INVALID, "is compressed")
    one_line_error(run("export", p, tmp_path / "out.pt"), INVALID, "is compressed")
    one_line_error(run("eval", "text", p, good["dir"] / "data.txt"), INVALID, "is compressed")


def test_zip_members_that_claim_more_than_the_file_holds_are_refused(good, tmp_path):
    # A stored member whose directory entry claims 1 GB: the central directory is checked, not trusted.
    data = bytearray(good["text"].read_bytes())
    with zipfile.ZipFile(good["text"]) as z:
        name = next(i.filename for i in z.infolist() if i.filename.endswith("/data/0")).encode()
    entry = data.index(b"PK\x01\x02")  # the central directory entries; the name starts at byte 46
    while data[entry + 46:entry + 46 + len(name)] != name:
        entry = data.index(b"PK\x01\x02", entry + 4)
    data[entry + 24:entry + 28] = struct.pack("<I", 1 << 30)  # its uncompressed size
    p = tmp_path / "claims.pt"
    p.write_bytes(bytes(data))
    with pytest.raises(GenseqError, match=INVALID + r"its member \S+/data/0 claims 1,073,741,824 bytes"):
        load_checkpoint(p)


# -- 3. configs that imply more than the file holds --------------------------------------------------

def test_a_config_without_its_weights_is_refused_before_building(good, tmp_path):
    # hidden 600 (5.8 million weights, 23 MB) and no weights: refused from the config's shapes alone.
    def big_and_empty(ck):
        ck["config"]["hidden"] = 600
        ck["model"] = {}
    p = edit(good["text"], tmp_path / "t.pt", big_and_empty)
    from genseq.text.api import load_text_model
    with pytest.raises(GenseqError, match=INVALID + r"weights its config needs are missing: decoder\.bias, "
                                                    r"decoder\.weight, embed\.weight and 4 more"):
        load_text_model(p)
    one_line_error(run("sample", "-m", p), INVALID, "missing")
    one_line_error(run("eval", "text", p, good["dir"] / "data.txt"), INVALID, "missing")
    p = edit(good["hand"], tmp_path / "h.pt", big_and_empty)
    one_line_error(run("write", "ab", "-m", p, "--candidates", "1", "-o", tmp_path / "o.svg"), INVALID, "missing")
    p = edit(good["hand"], tmp_path / "extra.pt", lambda ck: ck["model"].__setitem__("surprise", torch.zeros(2)))
    one_line_error(run("write", "ab", "-m", p, "--candidates", "1", "-o", tmp_path / "o.svg"),
                   INVALID, "it has weights its config does not use: surprise")


def test_the_parameter_cap(good, tmp_path, monkeypatch):
    import genseq.checkpoint as ck
    assert ck.MAX_PARAMETERS == 200_000_000
    from genseq.text.api import load_text_model
    n = sum(t.numel() for t in torch.load(good["text"], weights_only=True)["model"].values())
    monkeypatch.setattr(ck, "MAX_PARAMETERS", n - 1)
    with pytest.raises(GenseqError, match=INVALID + f"it has {n:,} weights; genseq loads at most {n - 1:,}"):
        load_text_model(good["text"])
    one_line_error(run("export", good["text"], tmp_path / "out.pt"), INVALID, "genseq loads at most")
    monkeypatch.undo()
    # A config that implies more than the cap, with no weights at all: refused by arithmetic on
    # shapes (a meta-device skeleton), not by building 400 million weights.
    p = edit(good["text"], tmp_path / "huge.pt", lambda c: (c["config"].update(hidden=5000, layers=2),
                                                            c.__setitem__("model", {})))
    one_line_error(run("sample", "-m", p), INVALID, "its config implies 400,", "genseq loads at most 200,000,000")
    p = edit(good["hand"], tmp_path / "layers.pt", lambda c: c["config"].update(layers=10**9))
    one_line_error(run("write", "ab", "-m", p, "--candidates", "1", "-o", tmp_path / "o.svg"),
                   INVALID, "asks for 1000000000 layers")


# -- 4. metadata that sampling and writing rely on -----------------------------------------------------

@pytest.mark.parametrize("key, value, needle", [
    ("norm_mean", [0.0, 0.0, 0.0], "norm_mean must be 2 numbers (dx, dy) of at most 1e+06 in size, not [0.0, 0.0, 0.0]"),
    ("norm_std", [1.0, 0.0], "norm_std must be 2 positive numbers (dx, dy) from 1e-06 to 1e+06"),
    ("norm_std", [1.0, float("nan")], "norm_std must be 2 positive numbers"),
    ("norm_mean", "ab", "norm_mean must be 2 numbers"),
    # finite as Python floats, but float32 arithmetic on them overflows or vanishes
    ("norm_mean", [1e300, 0.0], "norm_mean must be 2 numbers (dx, dy) of at most 1e+06 in size"),
    ("norm_std", [1e300, 1e300], "norm_std must be 2 positive numbers"),
    ("norm_std", [1e-300, 1e-300], "norm_std must be 2 positive numbers"),
    ("hidden", 8.0, "hidden must be a whole number, not 8.0"),
    ("alphabet", 5, "alphabet must be a string"),
])
def test_broken_handwriting_config_is_refused_on_loading(good, tmp_path, key, value, needle):
    p = edit(good["hand"], tmp_path / "h.pt", lambda ck: ck["config"].__setitem__(key, value))
    from genseq.hand.api import load_hand_model
    with pytest.raises(GenseqError, match="^" + str(p) + " " + INVALID):
        load_hand_model(p)
    one_line_error(run("write", "ab", "-m", p, "--candidates", "1", "-o", tmp_path / "o.svg"), INVALID, needle)


def test_broken_handwriting_meta_is_refused(good, tmp_path):
    for scale in (float("inf"), 1e300, 0.0):
        p = edit(good["hand"], tmp_path / "h.pt", lambda ck: ck["meta"].__setitem__("scale", scale))
        one_line_error(run("write", "ab", "-m", p, "--candidates", "1", "-o", tmp_path / "o.svg"),
                       INVALID, f"meta.scale must be a number from 1e-06 to 1e+06, not {scale}")
    p = edit(good["hand"], tmp_path / "u.pt", lambda ck: ck["meta"].__setitem__("units", 7))
    one_line_error(run("eval", "handwriting", p, tmp_path / "none.h5"), INVALID, "meta.units is not a string")


@pytest.mark.parametrize("vocab, encoding, needle", [
    ('["a", "b"]', "utf-8", "meta.vocab has 2 tokens but its config's vocab_size is 3"),
    ('["a", "b", "c", "d"]', "utf-8", "meta.vocab has 4 tokens but its config's vocab_size is 3"),
    ('["a", "bc", "d"]', "utf-8", "meta.vocab holds tokens other than single characters"),
    ('["a", "a", "b"]', "utf-8", "meta.vocab repeats a token"),
    ('[1, 2, 300]', "bytes", "meta.vocab holds tokens other than byte values 0-255"),
    ('{"a": 1}', "utf-8", "meta.vocab is missing or not a JSON list"),
    ('["a", "b", "c"]', "no-such-codec", "meta.encoding must be utf-8 or bytes, not 'no-such-codec'"),
    ('["a", "b", "c"]', "utf-16", "meta.encoding must be utf-8 or bytes, not 'utf-16'"),  # a codec, not the text code's
])
def test_broken_text_vocabulary_is_refused_on_loading(good, tmp_path, vocab, encoding, needle):
    p = edit(good["text"], tmp_path / "t.pt", lambda ck: ck["meta"].update(vocab=vocab, encoding=encoding))
    from genseq.text.api import load_text_model
    with pytest.raises(GenseqError, match="^" + str(p) + " " + INVALID):
        load_text_model(p)
    one_line_error(run("sample", "-m", p, "-n", "50", "--seed", "3"), INVALID, needle)
    one_line_error(run("eval", "text", p, good["dir"] / "data.txt"), INVALID, needle)


def test_wrongly_typed_text_config_is_refused(good, tmp_path):
    p = edit(good["text"], tmp_path / "t.pt", lambda ck: ck["config"].__setitem__("hidden", "8"))
    one_line_error(run("sample", "-m", p), INVALID, "text config hidden must be a whole number, not '8'")
    p = edit(good["text"], tmp_path / "n.pt", lambda ck: ck["config"].__setitem__("layers", [[1]] * 10**5))
    one_line_error(run("sample", "-m", p), INVALID, "layers must be a whole number, not a list of 100000 items")


# -- 5. a weight of the wrong shape is named ------------------------------------------------------------

def test_a_weight_of_the_wrong_shape_is_named_with_both_shapes(good, tmp_path):
    p = edit(good["text"], tmp_path / "s.pt", lambda ck: ck["model"].__setitem__("decoder.weight", torch.zeros(4, 8)))
    from genseq.text.api import load_text_model
    with pytest.raises(GenseqError, match=INVALID + r"the weight decoder\.weight should have shape \(3, 8\) "
                                                    r"for its config, found \(4, 8\)"):
        load_text_model(p)
    one_line_error(run("sample", "-m", p), INVALID, "decoder.weight should have shape (3, 8)", "found (4, 8)")
    p = edit(good["hand"], tmp_path / "h.pt",
             lambda ck: ck["model"].__setitem__("lstms.0.weight_hh_l0", torch.zeros(32, 9)))
    one_line_error(run("write", "ab", "-m", p, "--candidates", "1", "-o", tmp_path / "o.svg"),
                   INVALID, "lstms.0.weight_hh_l0 should have shape (32, 8) for its config, found (32, 9)")
    p = edit(good["text"], tmp_path / "i.pt",
             lambda ck: ck["model"].__setitem__("decoder.bias", torch.zeros(3, dtype=torch.int64)))
    one_line_error(run("sample", "-m", p), INVALID, "decoder.bias holds torch.int64 values, not floating point")


# -- memory: the heavy variants, in a child process --------------------------------------------------

CHILD = textwrap.dedent("""
    import json, resource, sys
    import torch
    from genseq.cli import main
    import genseq.text.api, genseq.hand.api, genseq.hand.evaluate, genseq.text.sample  # noqa: F401

    def hwm():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024

    def data_kb():
        for line in open("/proc/self/status"):
            if line.startswith("VmData:"):
                return int(line.split()[1])

    cases = json.loads(sys.argv[1])
    # Warm up on a good file: lazy imports and first allocations count in the baseline.
    try:
        main(cases.pop(0)[1], standalone_mode=False)
    except BaseException:
        pass
    base = hwm()
    # Should a check be missing, fail with an allocation error rather than swap the machine.
    limit = (data_kb() + 1536 * 1024) * 1024
    resource.setrlimit(resource.RLIMIT_DATA, (limit, resource.getrlimit(resource.RLIMIT_DATA)[1]))
    out = []
    for name, args in cases:
        try:
            main(args, standalone_mode=False)
            msg = "no error"
        except BaseException as err:
            msg = getattr(err, "message", None) or f"{type(err).__name__}: {err}"
        out.append([name, msg, hwm() - base])
    print(json.dumps(out))
""")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads peak RSS from /proc")
def test_hostile_files_stay_within_memory_bound(good, tmp_path):
    """Each hostile file costs under 100 MB above the process's baseline (torch and
    genseq imported, a good model loaded once): measured as the child's peak RSS."""
    d = tmp_path
    zero = edit(good["text"], d / "zero.pt",
                lambda ck: ck["model"].__setitem__("decoder.bias", repeated((20000, 20000))))
    zero_h = edit(good["hand"], d / "zero_h.pt",
                  lambda ck: ck["model"].__setitem__("output.linear.bias", repeated((10**6, 10**6))))
    bomb = zip_bomb(good["bomb"], d / "bomb.pt", 256 << 20)  # 256 MB from a 260 kB file
    empty = edit(good["text"], d / "empty.pt", lambda ck: (ck["config"].update(hidden=3000, layers=2),
                                                           ck.__setitem__("model", {})))
    over = edit(good["text"], d / "over.pt", lambda ck: (ck["config"].update(hidden=5000, layers=2),
                                                         ck.__setitem__("model", {})))
    norm = edit(good["hand"], d / "norm.pt", lambda ck: ck["config"].__setitem__("norm_mean", [0.0, 0.0, 0.0]))
    vocab = edit(good["text"], d / "vocab.pt", lambda ck: ck["meta"].__setitem__("vocab", '["a", "b"]'))
    svg, txt = str(d / "o.svg"), str(good["dir"] / "data.txt")
    cases = [
        ["warm-up", ["sample", "-m", str(good["text"]), "-n", "3", "--seed", "1"]],
        ["zero-stride sample", ["sample", "-m", str(zero)]],
        ["zero-stride export", ["export", str(zero), str(d / "x.pt")]],
        ["zero-stride write", ["write", "ab", "-m", str(zero_h), "--candidates", "1", "-o", svg]],
        ["zip bomb sample", ["sample", "-m", str(bomb)]],
        ["zip bomb export", ["export", str(bomb), str(d / "y.pt")]],
        ["config without weights", ["sample", "-m", str(empty)]],
        ["config over the cap", ["eval", "text", str(over), txt]],
        ["norm_mean", ["write", "ab", "-m", str(norm), "--candidates", "1", "-o", svg]],
        ["short vocab", ["sample", "-m", str(vocab), "-n", "100"]],
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cases)], capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    results = json.loads(r.stdout.strip().splitlines()[-1])
    expected = {"zero-stride sample": "stride 0", "zero-stride export": "stride 0", "zero-stride write": "stride 0",
                "zip bomb sample": "is compressed", "zip bomb export": "is compressed",
                "config without weights": "are missing", "config over the cap": "genseq loads at most 200,000,000",
                "norm_mean": "norm_mean must be 2 numbers (dx, dy) of at most", "short vocab": "meta.vocab has 2 tokens"}
    for name, msg, grew in results:
        assert INVALID in msg and expected[name] in msg, (name, msg)
        assert grew < 100 << 20, f"{name}: peak memory grew by {grew / 2**20:.0f} MB"
    assert not (d / "x.pt").exists() and not (d / "y.pt").exists()


def test_init_and_resume_check_a_file_before_building_its_model(good, tmp_path):
    """--init and --resume build a model from the file's own config: it is checked first."""
    import numpy as np

    from genseq.strokes import Sample, write_strokes
    rng = np.random.default_rng(0)

    def line(t):
        p = rng.normal(0, 5, (4 * len(t), 3)).astype(np.float32)
        p[:, 2] = 0
        p[-1, 2] = 1
        return Sample(t, t, p)
    data = tmp_path / "s.h5"
    write_strokes(data, {s: [line(t) for t in ("ab", "ba", "a b")] for s in ("train", "val")},
                  source="t", terms="t", units="u")

    def big_and_empty(ck):
        ck["config"]["hidden"] = 600
        ck["model"] = {}
    p = edit(good["hand"], tmp_path / "h.pt", big_and_empty)
    one_line_error(run("train", "handwriting", data, "--init", p, "-o", tmp_path / "ft", "--max-steps", 1, "-q"),
                   INVALID, "missing")
    run_dir = tmp_path / "run"
    r = run("train", "handwriting", data, "-o", run_dir, "--hidden", 8, "--layers", 1, "--mixtures", 2,
            "--window", 2, "--batch", 3, "--max-steps", 1, "-q")
    assert r.exit_code == 0, r.output
    edit(run_dir / "last.pt", run_dir / "last.pt", big_and_empty)
    one_line_error(run("train", "handwriting", data, "-o", run_dir, "--hidden", 8, "--layers", 1, "--mixtures", 2,
                       "--window", 2, "--batch", 3, "--max-steps", 2, "--resume", "-q"), INVALID, "missing")


@pytest.mark.parametrize("cls,d,msg", [
    ("reader", {"alphabet": "ab", "stride": "4"}, "recognizer config stride must be a whole number, not '4'"),
    ("reader", {"alphabet": "ab", "dropout": True}, "recognizer config dropout must be a number, not True"),
    ("reader", {"alphabet": "ab", "norm_std": [1.0, -1.0]}, "norm_std must be 2 positive numbers"),
    ("reader", {"alphabet": 7}, "recognizer config alphabet must be a string, not 7"),
    ("text", {}, "text config is missing vocab_size"),
    ("text", {"vocab_size": 3, "tie_weights": 1}, "text config tie_weights must be true or false, not 1"),
    ("text", [1, 2], "text config must be a mapping"),
])
def test_every_config_kind_checks_types_before_it_is_built(cls, d, msg):
    from genseq.reader.model import RecognizerConfig
    from genseq.text.model import CharRNNConfig
    config = {"reader": RecognizerConfig, "text": CharRNNConfig}[cls]
    with pytest.raises(GenseqError, match=re.escape(msg)):
        config.from_dict(d)
