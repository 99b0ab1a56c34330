"""The train functions (genseq.train_text, train_handwriting, train_reader) and the
`genseq train` commands that call them: flags one to one onto keywords, the same defaults."""
import dataclasses
import inspect

import click
import pytest

import genseq
from genseq.cli import main
from genseq.errors import GenseqError
from genseq.hand.model import HandwritingConfig
from genseq.hand.train import LINES
from genseq.reader.model import RecognizerConfig
from genseq.text.model import CharRNNConfig
from genseq.train import TrainOptions, TrainResult

TRAIN = {f.name: f.default for f in dataclasses.fields(TrainOptions) if f.name != "out"}
MINUTES = ("max_time", "save_every")  # the CLI's minutes, TrainOptions' seconds
RENAMED = {"quiet": "progress", "no_augment": "augment", "oversample_factor": "oversample"}


@pytest.mark.parametrize("command, fn, config, lines", [
    ("text", genseq.train_text, CharRNNConfig, {}),
    ("handwriting", genseq.train_handwriting, HandwritingConfig, LINES),
    ("recognizer", genseq.train_reader, RecognizerConfig, {}),
])
def test_each_flag_is_a_keyword_with_the_same_default(command, fn, config, lines):
    params = inspect.signature(fn).parameters
    context = {**{f.name: f.default for f in dataclasses.fields(config)}, **lines}  # what None stands for
    cmd = main.commands["train"].commands[command]
    ctx = click.Context(cmd)
    for opt in cmd.params:
        if not isinstance(opt, click.Option) or opt.name == "out":
            continue
        name = RENAMED.get(opt.name, opt.name)
        assert name in params or name in TRAIN, f"--{opt.name} is no keyword of {fn.__name__}"
        if name != opt.name:
            continue
        got = opt.get_default(ctx)
        if name in TRAIN:
            want = TRAIN[name]
            got = got * 60 if name in MINUTES and got is not None else got
        else:
            want = params[name].default
            want = context[name] if want is None and name in context else want
        assert got == want, f"--{opt.name}: the CLI's default {got!r}, the library's {want!r}"


def test_train_text_from_python_returns_the_result_and_keeps_the_init_model_s_sizes(tmp_path, corpus):
    tiny = dict(layers=1, hidden=8, batch=2, seq_len=8, eval_every=2, progress=False)
    r = genseq.train_text(corpus, tmp_path / "a", max_steps=2, **tiny)
    assert isinstance(r, TrainResult) and (r.step, r.stopped) == (2, "max_steps") and r.best_val is not None
    assert (tmp_path / "a" / "best.pt").exists()
    with pytest.raises(GenseqError, match=r"--hidden 16 \(the model: 8\)"):
        genseq.train_text(corpus, tmp_path / "b", init=tmp_path / "a" / "best.pt", hidden=16, max_steps=1)
    r = genseq.train_text(corpus, tmp_path / "c", init=tmp_path / "a" / "best.pt", hidden=8, dropout=0.1,
                          batch=2, seq_len=8, max_steps=1, progress=False)
    assert r.step == 1
