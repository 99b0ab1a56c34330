"""Bundled model files (weights + model cards)."""
