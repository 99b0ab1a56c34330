"""Lines shown while they grow (write_lines' progress and on_line): the same
lines as without them, every index a real line, each line's last report its
final points."""
import numpy as np
import pytest

from genseq.hand.api import WriteOptions, load_hand_model, write_lines

TEXTS = ["ab cd", "", "x y z"]


@pytest.fixture(scope="module")
def hm():
    return load_hand_model()


@pytest.mark.parametrize("opts", [WriteOptions(candidates=1, seed=5), WriteOptions(candidates=3, seed=5),
                                  WriteOptions(candidates=2, by_word=False, seed=5),
                                  WriteOptions(candidates=1, seed=5, style=1)],
                         ids=["one draw", "word by word", "by line", "primed"])
def test_progress_does_not_change_the_lines(hm, opts):
    plain = write_lines(TEXTS, hm, opts)
    seen, final = [], {}
    shown = write_lines(TEXTS, hm, opts, progress=lambda grown: seen.extend((i, p.copy()) for i, p in grown.items()),
                        on_line=lambda i, line: final.__setitem__(i, line))
    for a, b in zip(plain, shown):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_array_equal(a.points, b.points)
    assert sorted(final) == [0, 2] and all(final[i] is shown[i] for i in final)
    assert seen and {i for i, _ in seen} <= {0, 2}
    for i, pts in seen:
        assert pts.ndim == 2 and pts.shape[1] == 3 and np.isfinite(pts).all()
