"""Character-level language models: corpus, model, training task, sampling."""
from .api import eval_text, load_text_model, sample_text
from .corpus import CorpusFile, Vocab, build_corpus
from .model import CharRNN, CharRNNConfig
from .sample import TextSampleOptions, generate

__all__ = ["CharRNN", "CharRNNConfig", "CorpusFile", "TextSampleOptions", "Vocab", "build_corpus",
           "eval_text", "generate", "load_text_model", "sample_text"]
