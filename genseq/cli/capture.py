"""`genseq capture`: record your own handwriting in a local web page."""
from __future__ import annotations

import os
import sys
import webbrowser

import click

from ..capture import CaptureOptions, missing_chars, open_capture
from .groups import main

_D = CaptureOptions()


def _has_display() -> bool:
    # Without one, `webbrowser` would start a text browser (lynx, w3m) in this terminal.
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_page(url: str, no_browser: bool) -> None:
    """Open a local page's address in the browser, if there is a display and one is wanted."""
    if no_browser:
        return
    if _has_display():
        webbrowser.open(url)
    else:
        click.echo("no display found: open the address above in a browser on this machine", err=True)


@main.command()
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False),
              help="JSON Lines file to append the lines to (created if missing, never overwritten; "
                   "a symlink is followed; a device, FIFO or socket is refused).")
@click.option("--prompts", type=click.Path(dir_okay=False), default=None,
              help="Text file of prompts, one per line (# starts a comment). Default: the bundled list "
                   "covering a-z, A-Z, 0-9 and common punctuation.")
@click.option("--port", type=click.IntRange(0, 65535), default=_D.port, show_default=True,
              help="Port on 127.0.0.1 (0 = any free port).")
@click.option("--no-browser", is_flag=True, help="Only print the address; do not open a browser.")
def capture(out: str, prompts: str | None, port: int, no_browser: bool) -> None:
    """Write prompt sentences with a mouse, pen or finger; each line is saved at once.

    Serves a page on 127.0.0.1 only, at an address that holds a random key
    (without it every request is refused: keep it to yourself); stop with
    Ctrl-C. Turn the file into training data with `genseq data jsonl FILE -o mine.h5`.
    """
    server = open_capture(out, CaptureOptions(prompts=prompts, port=port))
    missing = missing_chars(server.session.prompts)
    if prompts is not None and missing:
        click.echo(f"note: no prompt uses {' '.join(missing)}", err=True)

    def ready() -> None:
        click.echo(f"capture page: {server.url}  (saving to {out}; Ctrl-C to stop)")
        open_page(server.url, no_browser)
    saved = server.run(ready)
    click.echo(f"stopped; {saved} line{'s' if saved != 1 else ''} saved to {out} this session")
