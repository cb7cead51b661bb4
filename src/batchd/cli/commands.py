"""The `batchd` command. Every `serve` option also reads a BATCHD_* environment variable."""

from __future__ import annotations

import functools
import sys
from typing import Any

import click

from batchd import __version__, config, exceptions
from batchd.cli import client as client_cli


def _settings_options(fn: Any, skip: frozenset[str] = frozenset()) -> Any:
    for setting in reversed([s for s in config.SETTINGS if s.flag and s.name not in skip]):
        opt = "--" + setting.name.replace("_", "-")
        decl = [f"{opt}/--no-{opt[2:]}"] if setting.cast is config.parse_bool else [opt]
        fn = click.option(
            *decl,
            setting.name,
            default=None,
            help=f"{setting.help} [env {setting.env}; default {setting.default!r}]",
        )(fn)
    return fn


@click.group()
@click.version_option(__version__, prog_name="batchd")
def main() -> None:
    """batchd: a self-hosted Anthropic Message Batches API server."""


client_cli.register(main)  # submit, ls, show, watch, results, cancel, delete


_config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML settings file [env BATCHD_CONFIG].",
)


def _settings(flags: dict[str, Any], config_file: str | None, *, worker: bool = False) -> config.Settings:
    """Settings from flags, env and file, checked; a bad one ends the command with exit 2."""
    from batchd.cli import worker as worker_module
    from batchd.engine import router

    try:
        settings = config.load(flags, config_file=config_file)
        router.check(settings)  # a bad routing table stops the start with a clear message
        if worker:
            worker_module.check(settings)
    except exceptions.ConfigError as exc:
        click.echo(f"batchd: {exc.message}", err=True)
        sys.exit(2)
    return settings


@main.command()
@_config_option
@functools.partial(_settings_options, skip=frozenset({"metrics_port"}))  # serve has /metrics
def serve(config_file: str | None, **flags: Any) -> None:
    """Run the HTTP API and the engine (SQLite under --data-dir by default)."""
    from batchd.cli import server

    server.serve(_settings(flags, config_file))


def _worker_options(fn: Any) -> Any:
    return _settings_options(fn, skip=frozenset({"port"}))


@main.command()
@_config_option
@_worker_options
def worker(config_file: str | None, **flags: Any) -> None:
    """Run the engine without the API, sharing a PostgreSQL --database-url with other processes."""
    from batchd.cli import worker as worker_module

    settings = _settings(flags, config_file, worker=True)
    try:
        worker_module.main(settings)
    except exceptions.StoreError as exc:
        click.echo(f"batchd: {exc.message}", err=True)
        sys.exit(1)
