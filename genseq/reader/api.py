"""Loading a reader from its model file (`None` or "default": the bundled one)."""
from __future__ import annotations

import os

from ..checkpoint import load_model
from .model import Recognizer, RecognizerConfig

DEFAULT_RECOGNIZER = "recognizer.pt"


def load_recognizer(path: str | os.PathLike | None = None, device: str = "cpu") -> Recognizer:
    """Load a recognizer (`None` or "default": the bundled one)."""
    return load_recognizer_file(path, device)[0]


def load_recognizer_file(path: str | os.PathLike | None = None, device: str = "cpu") -> tuple[Recognizer, dict]:
    """A recognizer and its file's meta (data, units, scale)."""
    model, ckpt = load_model(path, "recognizer", DEFAULT_RECOGNIZER,
                             lambda ck: Recognizer(RecognizerConfig.from_dict(ck["config"])))
    return model.to(device).eval(), ckpt["meta"]
