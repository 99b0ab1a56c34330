"""The handwriting reader: a bidirectional LSTM with CTC that reads pen
strokes (model.py), its training (task.py, data.py), evaluation and loading.
The writer (genseq.hand) uses it to choose among candidate lines; it imports
nothing of the writer."""
from .api import DEFAULT_RECOGNIZER, load_recognizer, load_recognizer_file
from .model import Recognizer, RecognizerConfig

__all__ = ["DEFAULT_RECOGNIZER", "Recognizer", "RecognizerConfig", "load_recognizer", "load_recognizer_file"]
