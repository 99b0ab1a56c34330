import os

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
