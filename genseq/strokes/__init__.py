"""Pen-stroke data: converters to, and the reader of, the genseq stroke HDF5
layout (datasets/README.md), and the training lines the models read from it
(batches.py, mixed.py). No torch here."""
from .h5 import Sample, StrokeDataset, StrokeSplit, StrokeWriter, write_strokes
from .clean import CleanOptions, clean_strokes, to_offsets, to_strokes

__all__ = ["Sample", "StrokeDataset", "StrokeSplit", "StrokeWriter", "write_strokes", "CleanOptions",
           "clean_strokes", "to_offsets", "to_strokes"]
