"""The one training loop that every genseq model kind uses."""
from .loop import Task, TrainOptions, TrainResult, train

__all__ = ["Task", "TrainOptions", "TrainResult", "train"]
