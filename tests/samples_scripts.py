"""Load a script of samples/ as a module, for tests of its functions."""
import importlib.util
import sys
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def load_sample(name: str):
    """samples/NAME.py as the module NAME (samples/ on sys.path for its own imports)."""
    if str(SAMPLES) not in sys.path:
        sys.path.insert(0, str(SAMPLES))
    spec = importlib.util.spec_from_file_location(name, SAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, mod)
    spec.loader.exec_module(mod)
    return mod
