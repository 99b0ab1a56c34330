"""Prompt sentences for the capture page: the bundled list or the user's own.

A prompt file is UTF-8 text, one prompt per line; blank lines and lines that
start with `#` are ignored, repeated prompts are kept once.
"""
from __future__ import annotations

import os
import string
from importlib import resources
from pathlib import Path

from ..errors import GenseqError

MAX_PROMPT_CHARS = 300  # one line of handwriting, not a paragraph
MAX_PROMPT_FILE = 4 * 1024 * 1024  # bytes: thousands of prompts; more is not a prompt list
# What the default prompts must cover (tested), and what a user's list is checked against.
REQUIRED_CHARS = string.ascii_lowercase + string.ascii_uppercase + string.digits + ".,;:!?'\"-()"


def parse_prompts(text: str, where: str = "prompts") -> list[str]:
    """Prompts of a prompt file's text, in order, without repeats."""
    prompts: list[str] = []
    seen: set[str] = set()
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if len(line) > MAX_PROMPT_CHARS:
            raise GenseqError(f"{where}:{lineno}: prompt longer than {MAX_PROMPT_CHARS} characters "
                              "(a prompt is one line of handwriting)")
        if not line.isprintable():
            raise GenseqError(f"{where}:{lineno}: prompt holds control characters")
        if line not in seen:
            seen.add(line)
            prompts.append(line)
    if not prompts:
        raise GenseqError(f"{where}: no prompts (one per line; # starts a comment)")
    return prompts


def default_prompts() -> list[str]:
    """The bundled prompts (genseq/capture/prompts.txt)."""
    text = resources.files(__package__).joinpath("prompts.txt").read_text(encoding="utf-8")
    return parse_prompts(text, "prompts.txt")


def load_prompts(path: str | os.PathLike | None = None) -> list[str]:
    """The prompts of `path`, or the bundled ones when `path` is None."""
    if path is None:
        return default_prompts()
    path = Path(path)
    try:
        with open(path, "rb") as fh:  # a bounded read: --prompts /dev/zero must not fill the memory
            data = fh.read(MAX_PROMPT_FILE + 1)
    except FileNotFoundError:
        raise GenseqError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise GenseqError(f"{path}: is a folder, expected a text file of prompts") from None
    if len(data) > MAX_PROMPT_FILE:
        raise GenseqError(f"{path}: larger than {MAX_PROMPT_FILE // (1024 * 1024)} MiB; "
                          "expected a text file of prompts, one per line")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise GenseqError(f"{path}: not UTF-8 text") from None
    return parse_prompts(text, str(path))


def missing_chars(prompts: list[str]) -> str:
    """The characters of REQUIRED_CHARS that no prompt uses, in its order."""
    used = set("".join(prompts))
    return "".join(c for c in REQUIRED_CHARS if c not in used)
