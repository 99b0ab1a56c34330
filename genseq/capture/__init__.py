"""Record your own handwriting in a browser: `genseq capture -o mine.jsonl`.

A local web page (127.0.0.1 only, at an address holding a random key that
every request must carry) shows one prompt sentence at a time and
records pointer strokes (mouse, pen, finger); each finished line is appended
to a JSON Lines file (datasets/jsonl/README.md) at once.
"""
from .prompts import default_prompts, load_prompts, missing_chars
from .server import CaptureOptions, CaptureServer, open_capture
from .session import CaptureSession, Limits

__all__ = ["CaptureOptions", "CaptureServer", "CaptureSession", "Limits", "default_prompts",
           "load_prompts", "missing_chars", "open_capture"]
