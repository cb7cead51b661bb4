"""`batchd index build SOURCE --out FILE`: the index the `local` web search provider searches."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click


@click.group()
def index() -> None:
    """Build the local web search index (the `local` provider's [web_search] index)."""


@index.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Index file."
)
@click.option(
    "--base-url",
    default=None,
    help="A folder's documents get this URL followed by their path under it (default: file:// URLs).",
)
def build(source: Path, out: Path, base_url: str | None) -> None:
    """Index SOURCE: a folder of .txt/.md/.html files, or a JSONL file of {url, title, text, page_age?}."""
    from batchd.tools.web_search import index as search_index

    started = time.monotonic()
    try:
        count = search_index.build(search_index.read_source(source, base_url), out)
    except (ValueError, OSError) as exc:
        click.echo(f"batchd: {exc}", err=True)
        sys.exit(2)
    click.echo(f"indexed {count} documents into {out} in {time.monotonic() - started:.1f}s")
    click.echo(f'search them with: [web_search] index = "{out}" (or BATCHD_WEB_SEARCH_INDEX={out})')
