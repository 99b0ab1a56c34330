"""Handwriting prediction and synthesis (Graves 2013 sections 4 and 5)."""
from .mdn import MDNParams, MixtureOutput, mdn_nll, mdn_params, mdn_sample
from .model import HandState, HandwritingConfig, HandwritingModel, encode_text, pad_texts

__all__ = [
    "HandState", "HandwritingConfig", "HandwritingModel", "MDNParams", "MixtureOutput",
    "encode_text", "mdn_nll", "mdn_params", "mdn_sample", "pad_texts",
]
from .sample import HandLine, HandSampleOptions, denormalise, sample_synthesis, sample_unconditional

__all__ += ["HandLine", "HandSampleOptions", "denormalise", "sample_synthesis", "sample_unconditional"]
