"""The user's side of `batchd`: submit, ls, show, watch, results, cancel, delete.

These talk to any Anthropic-compatible batches URL (batchd or the real API) through the official
`anthropic` SDK. Errors are one line on stderr, never a traceback, with these exit codes:

0 success · 1 the server refused or failed the operation · 2 bad usage or a bad input file ·
3 the server could not be reached · 4 not found · 5 authentication or permission denied ·
130 interrupted.
"""

from __future__ import annotations

import functools
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any, NoReturn, ParamSpec, TypeVar, cast

import click
import httpx
import orjson

from batchd.cli import openai_submit, progress
from batchd.params import jsonl

if TYPE_CHECKING:  # imported when a command runs: `batchd --help` stays quick
    import anthropic
    from anthropic.types.messages import MessageBatch
    from anthropic.types.messages.batch_create_params import Request
    from rich.console import Console

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_NOT_FOUND, EXIT_AUTH = 1, 2, 3, 4, 5


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"batchd: {message}", err=True)
    sys.exit(code)


def _handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Every failure leaves as one line on stderr and a meaningful exit code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        import anthropic

        try:
            return fn(*args, **kwargs)
        except CliError as exc:
            _fail(exc.message, exc.code)
        except jsonl.BadInput as exc:
            for line in exc.lines():
                click.echo(line, err=True)
            _fail(f"{exc.path}: {len(exc.problems)} problem(s); nothing was sent", EXIT_USAGE)
        except anthropic.APIStatusError as exc:
            _fail(_status_message(exc), _status_code(exc.status_code))
        except anthropic.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            _fail(f"cannot reach {kwargs.get('base_url') or 'the server'}: {cause}", EXIT_UNREACHABLE)
        except anthropic.AnthropicError as exc:
            _fail(str(exc), EXIT_FAILED)
        except OSError as exc:
            _fail(str(exc), EXIT_USAGE)
        except KeyboardInterrupt:
            _fail("interrupted", 130)

    return wrapper


def _status_code(status: int) -> int:
    if status == 404:
        return EXIT_NOT_FOUND
    if status in (401, 403):
        return EXIT_AUTH
    return EXIT_FAILED


def _status_message(exc: anthropic.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    nested = body.get("error")
    error: dict[str, Any] = nested if isinstance(nested, dict) else {}
    kind = error.get("type") or "error"
    message = error.get("message") or exc.message
    return f"{exc.status_code} {kind}: {message}"


def _client_options(fn: F) -> F:
    fn = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")(fn)
    fn = click.option(
        "--api-key",
        envvar="ANTHROPIC_API_KEY",
        default=None,
        help="API key [env ANTHROPIC_API_KEY; any key works for a batchd without keys].",
    )(fn)
    fn = click.option(
        "--base-url",
        envvar="ANTHROPIC_BASE_URL",
        default=DEFAULT_BASE_URL,
        show_default=True,
        help="Batches API base URL, batchd or Anthropic's [env ANTHROPIC_BASE_URL].",
    )(fn)
    return fn


def _client(base_url: str, api_key: str | None) -> anthropic.Anthropic:
    import anthropic

    # A batchd without keys accepts any key; the SDK refuses to run with none.
    return anthropic.Anthropic(base_url=base_url, api_key=api_key or "batchd-no-key", max_retries=1)


def _dump(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _wire(batch: MessageBatch) -> dict[str, Any]:
    data: dict[str, Any] = batch.to_dict(mode="json")
    return data


# -- submit -------------------------------------------------------------------------------


def _server_limits(base_url: str) -> tuple[int, int]:
    """batchd states its per-batch limits at /health; anything else gets Anthropic's."""
    try:
        r = httpx.get(base_url.rstrip("/") + "/health", timeout=5.0)
        limits = r.json().get("limits") if r.status_code == 200 else None
        if isinstance(limits, dict):
            return int(limits["max_requests"]), int(limits["max_batch_bytes"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return jsonl.DEFAULT_MAX_REQUESTS, jsonl.DEFAULT_MAX_BATCH_BYTES


def _create(client: anthropic.Anthropic, chunk: list[dict[str, Any]], key: str) -> list[MessageBatch]:
    """Creates one batch, halving it if the server still finds it too large. `key` is the batch's
    Idempotency-Key: the SDK's retry of a create whose answer was lost gets the same batch."""
    import anthropic

    # Lines of the input file with a custom_id and a params object (jsonl.py checked them); the
    # server validates the params themselves.
    requests = cast("list[Request]", chunk)
    try:
        return [client.messages.batches.create(requests=requests, extra_headers={"Idempotency-Key": key})]
    except anthropic.APIStatusError as exc:
        if exc.status_code != 413 or len(chunk) < 2:
            raise
    half = len(chunk) // 2
    return _create(client, chunk[:half], f"{key}-a") + _create(client, chunk[half:], f"{key}-b")


@click.command()
@click.argument("requests_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--wait", is_flag=True, help="Show live progress until every batch ends, then write results.")
@click.option(
    "--out", "-o", "out", default=None, help="With --wait: write the results JSONL here (default stdout)."
)
@click.option(
    "--max-requests", type=int, default=None, help="Requests per batch (default: the server's limit)."
)
@click.option(
    "--max-batch-bytes", type=int, default=None, help="Bytes per batch (default: the server's limit)."
)
@click.option(
    "--idempotency-key",
    default=None,
    help="Run again with the same key and file to get the same batches, not new ones (batchd keeps "
    "keys 24 h). Default: a new key per run, which still makes the SDK's retries safe.",
)
@_client_options
@_handle_errors
def submit(
    requests_file: str,
    wait: bool,
    out: str | None,
    max_requests: int | None,
    max_batch_bytes: int | None,
    idempotency_key: str | None,
    base_url: str,
    api_key: str | None,
    as_json: bool,
) -> None:
    """Create batches from a JSONL file of {"custom_id", "params"} lines, split to fit the server's limits.

    A file of OpenAI batch input lines ({"custom_id", "method", "url", "body"}) goes through the
    OpenAI Batch API instead (uploaded to /v1/files, created at /v1/batches)."""
    if out and not wait:
        raise CliError("--out needs --wait (or use `batchd results ID -o FILE` later)", EXIT_USAGE)
    if as_json and wait and not out:
        raise CliError("--json with --wait needs --out FILE for the results", EXIT_USAGE)
    if openai_submit.is_openai_file(requests_file):
        _submit_openai(requests_file, wait, out, max_requests, base_url, api_key, as_json)
        return
    server_requests, server_bytes = _server_limits(base_url)
    max_requests = max_requests or server_requests
    max_batch_bytes = max_batch_bytes or server_bytes
    requests = jsonl.read_requests(requests_file, max_batch_bytes)
    console = _stderr()
    client = _client(base_url, api_key)
    created: list[MessageBatch] = []
    chunks = list(jsonl.split(requests, max_requests, max_batch_bytes))
    run = idempotency_key or f"batchd-submit-{secrets.token_hex(12)}"
    for i, chunk in enumerate(chunks):
        for batch in _create(client, chunk, run if len(chunks) == 1 else f"{run}-{i}"):
            created.append(batch)
            n = sum(progress.counts([batch]).values())
            console.print(f"created {batch.id} ({n} requests)")
    if len(created) > 1:
        console.print(f"{len(requests.items)} requests split into {len(created)} batches")
    if wait:
        ids = [b.id for b in created]
        created = progress.watch(client.messages.batches.retrieve, ids, console)
        with _output(out) as fh:
            for batch in created:
                _download(client, batch, fh, console if out else None)
        if out:
            console.print(f"results written to {out}")
    if as_json:
        _dump([_wire(b) for b in created])
    elif not wait:
        for batch in created:
            click.echo(batch.id)


def _submit_openai(
    path: str,
    wait: bool,
    out: str | None,
    max_requests: int | None,
    base_url: str,
    api_key: str | None,
    as_json: bool,
) -> None:
    console = _stderr()
    wire = openai_submit.Wire(base_url, api_key or os.environ.get("OPENAI_API_KEY"))
    try:
        created = openai_submit.submit(
            wire, path, console.print, max_lines=max_requests or openai_submit.MAX_LINES
        )
        if wait:
            ids = [b["id"] for b in created]
            progress.watch(lambda i: openai_submit.as_progress(wire.retrieve(i)), ids, console)
            created = [wire.retrieve(i) for i in ids]
            with _output(out) as fh:
                openai_submit.write_results(wire, created, fh)
            if out:
                console.print(f"results written to {out}")
    except openai_submit.WireError as exc:
        raise CliError(f"{exc.status}: {exc.message}", _status_code(exc.status)) from None
    except httpx.TransportError as exc:
        raise CliError(f"cannot reach {base_url}: {exc}", EXIT_UNREACHABLE) from None
    finally:
        wire.close()
    if as_json:
        _dump(created)
    elif not wait:
        for batch in created:
            click.echo(batch["id"])


@contextmanager
def _output(path: str | None) -> Iterator[IO[bytes]]:
    if path is None or path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    tmp = path + ".part"
    with open(tmp, "wb") as fh:
        yield fh
    os.replace(tmp, path)  # a half-written results file never takes the real name


def _download(
    client: anthropic.Anthropic, batch: MessageBatch, fh: IO[bytes], console: Console | None
) -> int:
    """Streams one ended batch's results into fh; a progress bar on console if given."""
    if batch.processing_status != "ended":
        raise CliError(
            f"batch {batch.id} has not ended yet ({batch.processing_status}); "
            f"try `batchd watch {batch.id}` first"
        )
    total = sum(progress.counts([batch]).values())
    written = 0
    with client.messages.batches.with_streaming_response.results(batch.id) as response:
        if console is None or not console.is_terminal:
            for chunk in response.iter_bytes():
                fh.write(chunk)
            return total
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(batch.id, total=total)
            for line in response.iter_lines():
                if line:
                    fh.write(line.encode() + b"\n")
                    written += 1
                    bar.advance(task)
    return written


# -- the other commands -------------------------------------------------------------------


def _ts(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "—"


@click.command(name="ls")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="Batches to list.")
@click.option("--all", "list_all", is_flag=True, help="List every batch (follows pagination).")
@_client_options
@_handle_errors
def ls(limit: int, list_all: bool, base_url: str, api_key: str | None, as_json: bool) -> None:
    """List batches, newest first."""
    client = _client(base_url, api_key)
    page = client.messages.batches.list(limit=limit)
    batches = list(page) if list_all else list(page.data)
    if as_json:
        _dump([_wire(b) for b in batches])
        return
    if not batches:
        click.echo("no batches", err=True)
        return
    click.echo(f"{'ID':<34} {'STATUS':<11} {'CREATED (UTC)':<19}  {'ENDED (UTC)':<19}  COUNTS")
    for b in batches:
        c = progress.counts([b])
        click.echo(
            f"{b.id:<34} {b.processing_status:<11} {_ts(b.created_at):<19}  {_ts(b.ended_at):<19}  "
            + progress.summary_line(c)
        )


@click.command()
@click.argument("batch_id")
@_client_options
@_handle_errors
def show(batch_id: str, base_url: str, api_key: str | None, as_json: bool) -> None:
    """Show one batch."""
    batch = _client(base_url, api_key).messages.batches.retrieve(batch_id)
    _print_batch(batch, as_json)


def _print_batch(batch: MessageBatch, as_json: bool) -> None:
    if as_json:
        _dump(_wire(batch))
        return
    data = _wire(batch)
    click.echo(f"{'id':<20} {batch.id}")
    click.echo(f"{'processing_status':<20} {batch.processing_status}")
    click.echo(f"{'request_counts':<20} {progress.summary_line(progress.counts([batch]))}")
    for key in ("created_at", "expires_at", "ended_at", "cancel_initiated_at", "archived_at", "results_url"):
        if data.get(key):
            click.echo(f"{key:<20} {data[key]}")


@click.command()
@click.argument("batch_id")
@click.option("--interval", type=float, default=1.0, show_default=True, help="Seconds between polls.")
@_client_options
@_handle_errors
def watch(batch_id: str, interval: float, base_url: str, api_key: str | None, as_json: bool) -> None:
    """Show a batch's live progress until it ends."""
    client = _client(base_url, api_key)
    (batch,) = progress.watch(client.messages.batches.retrieve, [batch_id], _stderr(), interval)
    if as_json:
        _dump(_wire(batch))


@click.command()
@click.argument("batch_id")
@click.option("-o", "--out", default=None, help="Write the results JSONL to this file (default stdout).")
@_client_options
@_handle_errors
def results(batch_id: str, out: str | None, base_url: str, api_key: str | None, as_json: bool) -> None:
    """Download an ended batch's results as JSONL (a progress bar when writing to a file)."""
    client = _client(base_url, api_key)
    batch = client.messages.batches.retrieve(batch_id)
    console = _stderr()
    with _output(out) as fh:
        n = _download(client, batch, fh, console if out else None)
    if out:
        console.print(f"{n} results written to {out}")
    if as_json and out:
        _dump({"id": batch_id, "results": n, "out": out})


@click.command()
@click.argument("batch_id")
@_client_options
@_handle_errors
def cancel(batch_id: str, base_url: str, api_key: str | None, as_json: bool) -> None:
    """Cancel a batch: pending requests become canceled, running ones finish."""
    batch = _client(base_url, api_key).messages.batches.cancel(batch_id)
    _print_batch(batch, as_json)


@click.command()
@click.argument("batch_id")
@_client_options
@_handle_errors
def delete(batch_id: str, base_url: str, api_key: str | None, as_json: bool) -> None:
    """Delete an ended batch and its results."""
    deleted = _client(base_url, api_key).messages.batches.delete(batch_id)
    if as_json:
        _dump(deleted.to_dict(mode="json"))
    else:
        click.echo(f"deleted {deleted.id}")


COMMANDS = (submit, ls, show, watch, results, cancel, delete)


def register(group: click.Group) -> None:
    for command in COMMANDS:
        group.add_command(command)
