"""The `batchd` command. Every `serve` option also reads a BATCHD_* environment variable."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from batchd import __version__, config, exceptions
from batchd.cli import client as client_cli
from batchd.cli import index as index_cli
from batchd.cli import keys as keys_cli
from batchd.cli import webhooks as webhooks_cli

F = TypeVar("F", bound=Callable[..., Any])


def _declarations(name: str, setting: config.Setting) -> list[str]:
    option = config.option_name(name)
    return [f"{option}/--no-{option[2:]}"] if setting.cast is config.parse_bool else [option]


def _settings_options(command: config.Command) -> Callable[[F], F]:
    """The flags of every setting `command` takes, each naming its env var and default."""

    def decorate(fn: F) -> F:
        for setting in reversed([s for s in config.SETTINGS if command in s.commands]):
            for alias in setting.aliases:  # deprecated spellings: still read, no longer shown
                fn = click.option(*_declarations(alias, setting), alias, default=None, hidden=True)(fn)
            shown = f"env {setting.env}; default {setting.default_text}"
            if setting.aliases:
                shown += "; formerly " + ", ".join(map(config.option_name, setting.aliases))
            fn = click.option(
                *_declarations(setting.name, setting),
                setting.name,
                default=None,
                help=f"{setting.help} [{shown}]",
            )(fn)
        return fn

    return decorate


@click.group()
@click.version_option(__version__, prog_name="batchd")
def main() -> None:
    """batchd: a self-hosted Anthropic Message Batches API server."""


client_cli.register(main)  # submit, ls, show, watch, results, cancel, delete
main.add_command(index_cli.index)  # index build
keys_cli.register(main)  # keys create | list | revoke, usage
main.add_command(webhooks_cli.webhooks)  # webhooks add, list, remove, deliveries, redeliver


_config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML settings file [env BATCHD_CONFIG].",
)


def _settings(flags: dict[str, object], config_file: str | None, *, worker: bool = False) -> config.Settings:
    """Settings from flags, env and file, checked; a bad one ends the command with exit 2."""
    from batchd.cli import worker as worker_module
    from batchd.engine import router, webhooks

    try:
        settings = config.load(flags, config_file=config_file)
        router.check(settings)  # a bad routing table stops the start with a clear message
        webhooks.check(settings)  # so do configured webhook endpoints without their secrets
        if worker:
            worker_module.check(settings)
    except exceptions.ConfigError as exc:
        click.echo(f"batchd: {exc.message}", err=True)
        sys.exit(2)
    return settings


@main.command()
@_config_option
@_settings_options(config.Command.SERVE)
def serve(config_file: str | None, **flags: object) -> None:
    """Run the HTTP API and the engine (SQLite under --data-dir by default)."""
    from batchd.cli import server

    server.serve(_settings(flags, config_file))


@main.command()
@_config_option
@_settings_options(config.Command.WORKER)
def worker(config_file: str | None, **flags: object) -> None:
    """Run the engine without the API, sharing a PostgreSQL --database-url with other processes."""
    from batchd.cli import worker as worker_module

    settings = _settings(flags, config_file, worker=True)
    try:
        worker_module.main(settings)
    except exceptions.StoreError as exc:
        click.echo(f"batchd: {exc.message}", err=True)
        sys.exit(1)
