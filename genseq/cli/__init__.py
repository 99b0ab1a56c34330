"""Command-line interface: `genseq ...`, `python -m genseq ...`, `python cli.py ...`."""
from .groups import main
from . import text as _text  # noqa: F401  (commands register themselves)
from . import strokes as _strokes  # noqa: F401
from . import hand as _hand  # noqa: F401
from . import show as _show  # noqa: F401
from . import capture as _capture  # noqa: F401
from . import recognize as _recognize  # noqa: F401
from . import studio as _studio  # noqa: F401

__all__ = ["main"]
