import h5py
import numpy as np
import pytest

from genseq.errors import GenseqError
from genseq.strokes import Sample, StrokeDataset, write_strokes
from genseq.strokes.clean import CleanOptions, Skip, clean_strokes, to_offsets, to_strokes

ATTRS = dict(source="test", terms="none", units="px")


def _samples(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        p = rng.normal(size=(rng.integers(1, 30), 3)).astype(np.float32)
        p[:, 2] = 0
        p[-1, 2] = 1
        out.append(Sample(f"id{i}", f"text é{i}", p))
    return out


def test_round_trip(tmp_path):
    tr, va = _samples(7), _samples(3, 1)
    path = tmp_path / "s.h5"
    write_strokes(path, {"train": tr, "val": va}, **ATTRS)
    with StrokeDataset(path) as ds:
        assert ds.alphabet == "".join(sorted(set("".join(s.text for s in tr + va))))
        xy = np.concatenate([s.points[:, :2] for s in tr]).astype(np.float64)
        np.testing.assert_allclose(ds.norm_mean, xy.mean(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ds.norm_std, xy.std(0), rtol=1e-5)
        assert (ds.source, ds.terms, ds.units, ds.resample) == ("test", "none", "px", "none")
        sp = ds.split("train")
        assert len(sp) == 7 and len(ds.split("test")) == 0
        assert sp.lengths.dtype == np.int64 and list(sp.lengths) == [len(s.points) for s in tr]
        for i in (0, 3, -1):
            got = sp[i]
            assert got.id == tr[i].id and got.text == tr[i].text
            np.testing.assert_array_equal(got.points, tr[i].points)
            assert got.points.dtype == np.float32
        assert ds.split("val").texts == [s.text for s in va]
        assert ds.split("val").ids == [s.id for s in va]
        with pytest.raises(IndexError):
            sp[7]
        with pytest.raises(GenseqError):
            ds.split("dev")


def test_reader_rejects_bad_files(tmp_path):
    bad = tmp_path / "x.h5"
    bad.write_text("hello")
    with pytest.raises(GenseqError, match="not an HDF5"):
        StrokeDataset(bad)
    with pytest.raises(GenseqError, match="no such"):
        StrokeDataset(tmp_path / "missing.h5")
    other = tmp_path / "o.h5"
    with h5py.File(other, "w") as f:
        f.attrs["format"] = "something"
    with pytest.raises(GenseqError, match="not a genseq stroke file"):
        StrokeDataset(other)
    good = tmp_path / "g.h5"
    write_strokes(good, {"train": _samples(3)}, **ATTRS)
    with h5py.File(good, "a") as f:
        f.attrs["version"] = 99
    with pytest.raises(GenseqError, match="version"):
        StrokeDataset(good)
    write_strokes(good, {"train": _samples(3)}, **ATTRS)
    with h5py.File(good, "a") as f:
        f["train/offsets"][-1] = 10**6
    with pytest.raises(GenseqError, match="offsets"):
        StrokeDataset(good)
    write_strokes(good, {"train": _samples(3)}, **ATTRS)
    with h5py.File(good, "a") as f:
        del f["val/texts"]
    with pytest.raises(GenseqError, match="texts"):
        StrokeDataset(good)


def test_write_rejects_unknown_split(tmp_path):
    with pytest.raises(GenseqError):
        write_strokes(tmp_path / "a.h5", {"dev": []}, **ATTRS)
    assert not (tmp_path / "a.h5").exists()


def test_offsets_convention_and_inverse():
    strokes = [np.array([[0, 0], [0, -10.0], [0, -20]]), np.array([[5, 5.0]])]
    p = to_offsets(strokes)
    assert p.dtype == np.float32 and p.shape == (4, 3)
    np.testing.assert_array_equal(p[:, 2], [0, 0, 1, 1])
    np.testing.assert_array_equal(p[0], [0, 0, 0])
    np.testing.assert_array_equal(p[3, :2], [5, 25])
    back = to_strokes(p)
    assert [len(s) for s in back] == [3, 1]
    np.testing.assert_array_equal(back[1][0], [5, 5])


def test_clean_y_flip_duplicates_and_jump():
    p = clean_strokes([[(0, 0), (0, 0), (0, 10), (0, 20)]], y_down=True)
    assert len(p) == 3 and (p[1:, 1] < 0).all()  # drawn downwards on the tablet -> negative dy
    p = clean_strokes([[(0, 0), (0, 10)]], y_down=False)
    assert p[1, 1] == 10
    steps = [(i, 0) for i in range(20)] + [(500, 0)]
    with pytest.raises(Skip, match="absurd jump"):
        clean_strokes([steps], y_down=True)
    assert len(clean_strokes([steps], CleanOptions(max_jump_ratio=0), y_down=True)) == 21
    with pytest.raises(Skip, match="no points"):
        clean_strokes([[], []], y_down=True)
    with pytest.raises(Skip, match="non-finite"):
        clean_strokes([[(0, float("nan"))]], y_down=True)
    with pytest.raises(Skip, match="huge"):
        clean_strokes([[(0, 1e300)]], y_down=True)


def test_resampling_keeps_stroke_ends():
    s = [(i, 0) for i in range(10)]
    p = clean_strokes([s, s], CleanOptions(every=4), y_down=False)
    xs = np.cumsum(p[:, 0])
    np.testing.assert_array_equal(xs, [0, 4, 8, 9, 0, 4, 8, 9])
    np.testing.assert_array_equal(p[:, 2], [0, 0, 0, 1, 0, 0, 0, 1])
    p = clean_strokes([s], CleanOptions(min_dist=3), y_down=False)
    np.testing.assert_array_equal(np.cumsum(p[:, 0]), [0, 3, 6, 9])
    assert CleanOptions(every=2).describe() != "none" and CleanOptions().describe() == "none"
