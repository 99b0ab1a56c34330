"""`genseq studio`: write handwriting and text in a local web page."""
from __future__ import annotations

import click

from ..studio import StudioOptions, open_studio
from .capture import open_page
from .groups import main

_D = StudioOptions()


@main.command()
@click.option("--model", "-m", default=None, help="Synthesis model file (default: the bundled one).")
@click.option("--style-file", type=click.Path(dir_okay=False), default=None,
              help="Your handwriting (JSON Lines, e.g. from `genseq capture`, or InkML) as the style \"mine\"; "
                   "the page can also load one.")
@click.option("--capture", "capture", type=click.Path(dir_okay=False), default=None,
              help="Also serve a capture page (its own address and key) that records your lines into this "
                   "JSON Lines file; the studio links to it and uses them as \"mine\" (what the file holds "
                   "already, at once).")
@click.option("--text-model", "text_models", multiple=True, type=click.Path(dir_okay=False),
              help="Text model file for the Text tab, besides the bundled one (repeat for several).")
@click.option("--port", type=click.IntRange(0, 65535), default=_D.port, show_default=True,
              help="Port on 127.0.0.1 (0 = any free port).")
@click.option("--max-text", type=click.IntRange(1, 20_000), default=_D.max_text, show_default=True,
              help="Longest text the page may write, in characters.")
@click.option("--no-browser", is_flag=True, help="Only print the address; do not open a browser.")
def studio(model, style_file, capture, text_models, port, max_text, no_browser) -> None:
    """A local web page: type a text, pick a hand, watch it being written, download it
    as SVG, animated SVG, PNG, PDF or plotter SVG; and sample text.

    Serves on 127.0.0.1 only, at an address that holds a random key (without
    it every request is refused: keep it to yourself); stop with Ctrl-C.
    """
    server = open_studio(StudioOptions(model=model, style_file=style_file, capture=capture,
                                       text_models=tuple(text_models), port=port, max_text=max_text))

    def ready() -> None:
        click.echo(f"studio: {server.url}  (Ctrl-C to stop)")
        if server.capture is not None:
            click.echo(f"capture page: {server.capture.url}  (saving to {capture})")
        open_page(server.url, no_browser)
    server.serve(ready)
    click.echo("stopped")
