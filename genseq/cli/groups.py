"""The Click command groups. Command modules attach themselves to these.

The CLI is thin: each command parses options, builds an options dataclass and
calls one library function. Errors that a user can fix (GenseqError, and OS
errors such as a missing file) become one line on stderr and exit status 1;
so does any other exception (input no check foresaw), unless GENSEQ_DEBUG is
set, which shows its traceback.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import click

from .. import __version__
from ..errors import GenseqError


def refuse_output_over_input(params: dict) -> None:
    """A command's output (-o) must not be one of its own input files: the atomic
    write would replace, say, the JSONL ink a dataset is built from. Nor may
    the pages a long text fills beside it (-o out.svg: out-1.svg, out-2.svg,
    ...): an existing one that is, or links to, an input is refused too."""
    out = params.get("out") or params.get("output")
    if out is None:
        return
    inputs = [v for name, value in params.items() if name not in ("out", "output")
              for v in (value if isinstance(value, (tuple, list)) else [value])]
    inputs = [v if isinstance(v, (str, os.PathLike)) else getattr(v, "name", None) for v in inputs]  # click.File
    inputs = [v for v in inputs if isinstance(v, (str, os.PathLike)) and str(v) and os.path.isfile(v)]
    if not inputs:
        return
    out = Path(out)
    if out.is_file() and any(os.path.samefile(out, v) for v in inputs):
        raise GenseqError(f"{out} is also an input of this command; write to another file")
    page = re.compile(rf"{re.escape(out.stem)}-[1-9][0-9]*{re.escape(out.suffix)}")
    pages = [p for p in out.parent.iterdir() if page.fullmatch(p.name) and p.is_file()] if out.parent.is_dir() else []
    for p in pages:
        for v in inputs:
            if os.path.samefile(p, v):
                raise GenseqError(f"{p} is the input {v}: a page of -o {out.name} would replace it; "
                                  "write to another name")


class _Command(click.Command):
    def invoke(self, ctx: click.Context):
        refuse_output_over_input(ctx.params)
        return super().invoke(ctx)


class _Group(click.Group):
    command_class = _Command

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except GenseqError as err:
            raise click.ClickException(str(err)) from None
        except UnicodeDecodeError as err:  # --file, --prime-file or stdin that is not UTF-8
            raise click.ClickException(f"the input is not UTF-8 text (byte {err.start}: "
                                       f"{err.object[err.start:err.start + 1]!r})") from None
        except BrokenPipeError:  # `genseq sample | head`: the reader left; stop quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(0)
        except OSError as err:  # a missing file, no permission, a full disk: one line, not a traceback
            where = f": {err.filename}" if err.filename else ""
            raise click.ClickException(f"{err.strerror or err}{where}") from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except MemoryError:
            raise click.ClickException("out of memory: the input asks for more than this machine has") from None
        except RecursionError:
            raise click.ClickException("the input is nested too deeply to read") from None
        except Exception as err:  # a case no check foresaw: still one line (GENSEQ_DEBUG=1: the traceback)
            if os.environ.get("GENSEQ_DEBUG", "0") not in ("", "0"):
                raise
            text = str(err)[:2000].strip()
            what = text.splitlines()[0][:300] if text else ""
            raise click.ClickException(f"unexpected {type(err).__name__}{': ' + what if what else ''} "
                                       "(set GENSEQ_DEBUG=1 to see where)") from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, prog_name="genseq")
def main() -> None:
    """genseq: generate text and handwriting with recurrent networks."""


@main.group(cls=_Group)
def data() -> None:
    """Build HDF5 datasets from text corpora and pen-stroke collections."""


@main.group(cls=_Group)
def train() -> None:
    """Train a model (resumable; checkpoints, metrics and pictures in --out)."""


@main.group(name="eval", cls=_Group)
def evaluate() -> None:
    """Held-out scores of a trained or bundled model."""


@main.command("export")
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--half/--full", default=True, show_default=True, help="Store weights as fp16 (half the size) or fp32.")
def export(model: str, out: str, half: bool) -> None:
    """Copy MODEL to OUT with its weights only (no optimizer state): what you share or bundle."""
    import os

    from ..checkpoint import bundled_path, export_model
    from ..errors import GenseqError
    if model == "default" and not os.path.exists(model):
        raise GenseqError("export copies a model file you trained; the bundled models are exported already "
                          f"(in {bundled_path('handwriting.pt').parent})")
    export_model(model, out, half=half)
    click.echo(f"{out}: {os.path.getsize(out) / 1e6:.1f} MB")
