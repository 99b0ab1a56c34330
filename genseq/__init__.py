"""genseq: generate text and handwriting with recurrent networks.

The public API is imported lazily, so that `import genseq.render` (which
never needs torch) stays light.
"""
from importlib import import_module

__version__ = "0.2.0"

_API = {
    "sample_text": "genseq.text.api",
    "eval_text": "genseq.text.api",
    "load_text_model": "genseq.text.api",
    "TextSampleOptions": "genseq.text.sample",
    "write_handwriting": "genseq.hand.api",
    "write_drawing": "genseq.hand.api",
    "WriteOptions": "genseq.hand.api",
    "load_hand_model": "genseq.hand.api",
    "train_text": "genseq.text.train",
    "train_handwriting": "genseq.hand.train",
    "train_reader": "genseq.reader.train",
    "GenseqError": "genseq.errors",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'genseq' has no attribute {name!r}")
