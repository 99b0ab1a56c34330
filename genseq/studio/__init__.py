"""genseq studio: a local web page to write handwriting and text, watch it being
written, and download it (SVG, animated SVG, PNG, PDF, plotter SVG)."""
from .server import StudioOptions, StudioServer, open_studio
from .session import StudioSession

__all__ = ["StudioOptions", "StudioServer", "StudioSession", "open_studio"]
