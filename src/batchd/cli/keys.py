"""`batchd keys create | list | revoke` and `batchd usage`: the operator's side of the admin API.

They talk to a running batchd's admin API (`/v1/admin/...`, api/admin.py) with an admin key
(`--admin-key`, env BATCHD_ADMIN_KEY). Given `--database-url` or `--data-dir`, they work on the
store itself instead, with no server and no key: the way to make the first admin key (on SQLite,
with the server stopped: one process owns the file). Exit codes as the other client commands.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import click
import httpx
import orjson

from batchd import config, exceptions
from batchd.cli.client import (
    EXIT_AUTH,
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    CliError,
    _fail,
)

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_BASE_URL = "http://127.0.0.1:8080"


def _handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except CliError as exc:
            _fail(exc.message, exc.code)
        except httpx.HTTPError as exc:
            _fail(f"cannot reach {kwargs.get('base_url')}: {exc}", EXIT_UNREACHABLE)
        except exceptions.BatchdError as exc:  # the store, in direct mode
            _fail(exc.message, EXIT_USAGE if isinstance(exc, exceptions.ConfigError) else EXIT_FAILED)

    return wrapper


def _options(fn: F) -> F:
    fn = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")(fn)
    fn = click.option(
        "--data-dir",
        default=None,
        help="Work on the SQLite store in this directory directly (no server; stop it first).",
    )(fn)
    fn = click.option(
        "--database-url",
        default=None,
        help="Work on this store directly (no server, no key): how the first admin key is made.",
    )(fn)
    fn = click.option(
        "--admin-key", envvar="BATCHD_ADMIN_KEY", default=None, help="An admin key [env BATCHD_ADMIN_KEY]."
    )(fn)
    fn = click.option(
        "--base-url",
        envvar="ANTHROPIC_BASE_URL",
        default=DEFAULT_BASE_URL,
        show_default=True,
        help="batchd's base URL [env ANTHROPIC_BASE_URL].",
    )(fn)
    return fn


class _Admin:
    """The admin API over HTTP, or the same operations on the store itself."""

    def __init__(self, base_url: str, admin_key: str | None, database_url: str | None, data_dir: str | None):
        self.base_url = base_url.rstrip("/")
        self.admin_key = admin_key
        self.store_url = database_url or (config.Settings(data_dir=data_dir).store_url if data_dir else None)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"x-api-key": self.admin_key} if self.admin_key else {}
        response = httpx.request(method, self.base_url + path, headers=headers, timeout=30.0, **kwargs)
        if response.status_code >= 400:
            raise CliError(_message(response), _exit_code(response.status_code))
        return response.json()

    def listing(
        self, path: str, workspace: str | None, read: Callable[[Any], Any], render: Callable[[Any], Any]
    ) -> list[Any]:
        """The admin API's list at `path`, or with a store given, `read(store)`'s rows as it renders them."""
        if self.store_url is None:
            return list(
                self.call("GET", path, params={"workspace": workspace} if workspace else None)["data"]
            )
        return [render(row) for row in self.direct(read)]

    def direct(self, operation: Callable[[Any], Any]) -> Any:
        from batchd.store import open_store

        async def run() -> Any:
            assert self.store_url is not None
            store = open_store(self.store_url)
            await store.open()
            try:
                return await operation(store)
            finally:
                await store.aclose()

        return asyncio.run(run())


def _message(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        return f"{response.status_code} {error['type']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code}: {response.text[:200]}"


def _exit_code(status: int) -> int:
    if status == 404:
        return EXIT_NOT_FOUND
    return EXIT_AUTH if status in (401, 403) else EXIT_FAILED


def _only(workspace: str | None) -> dict[str, str] | None:
    return {"workspace": workspace} if workspace else None


def _dump(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


@click.group()
def keys() -> None:
    """Managed API keys (with managed_keys on): create, list, revoke. See docs/teams.md."""


@keys.command()
@click.option("--workspace", required=True, help="The workspace the key acts in.")
@click.option("--name", default="", help="A name to recognise the key by (e.g. ci).")
@click.option("--admin", is_flag=True, help="May use the admin API: every workspace's keys and usage.")
@click.option("--expires", default=None, help="Lifetime, e.g. 30d or 12h (default: until revoked).")
@_options
@_handle_errors
def create(
    workspace: str,
    name: str,
    admin: bool,
    expires: str | None,
    base_url: str,
    admin_key: str | None,
    database_url: str | None,
    data_dir: str | None,
    as_json: bool,
) -> None:
    """Create a key and print it, once: only its digest is kept."""
    from batchd.api import keyring

    api = _Admin(base_url, admin_key, database_url, data_dir)
    if api.store_url is None:
        body: dict[str, Any] = {"workspace": workspace, "name": name, "admin": admin}
        if expires:
            body["expires_in"] = expires
        made = api.call("POST", "/v1/admin/keys", json=body)
    else:
        key, row = _new_key(workspace, name, admin, expires)  # checked before the store is opened
        api.direct(lambda store: store.create_api_key(row))
        made = {**keyring.render(row), "key": key}
    if as_json:
        _dump(made)
        return
    click.echo(made["key"])
    role = " (admin)" if made["admin"] else ""
    click.echo(
        f"{made['id']} for workspace {made['workspace']}{role}: shown this once, keep it now", err=True
    )


def _new_key(workspace: str, name: str, admin: bool, expires: str | None) -> tuple[str, Any]:
    from batchd.api import keyring

    now = time.time()
    try:
        expires_at = None if expires is None else now + config.parse_duration(expires)
        return keyring.make(workspace=workspace, name=name, admin=admin, now=now, expires_at=expires_at)
    except (ValueError, exceptions.InvalidRequest) as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


@keys.command(name="list")
@click.option("--workspace", default=None, help="Only this workspace's keys.")
@_options
@_handle_errors
def list_keys(
    workspace: str | None,
    base_url: str,
    admin_key: str | None,
    database_url: str | None,
    data_dir: str | None,
    as_json: bool,
) -> None:
    """List the managed keys, revoked ones included (never a key itself)."""
    from batchd.api import keyring

    api = _Admin(base_url, admin_key, database_url, data_dir)
    found = api.listing(
        "/v1/admin/keys", workspace, lambda store: store.list_api_keys(workspace), keyring.render
    )
    if as_json:
        _dump(found)
        return
    for k in found:
        state = "revoked" if k["revoked_at"] else "admin" if k["admin"] else "active"
        used = k["last_used_at"] or "never used"
        expires = f" expires {k['expires_at']}" if k["expires_at"] else ""
        name = k["name"] or "-"
        click.echo(
            f"{k['id']}  {k['workspace']}  {name}  {state}  created {k['created_at']}  {used}{expires}"
        )


@keys.command()
@click.argument("key_id")
@_options
@_handle_errors
def revoke(
    key_id: str,
    base_url: str,
    admin_key: str | None,
    database_url: str | None,
    data_dir: str | None,
    as_json: bool,
) -> None:
    """Revoke a key: every process refuses it within seconds."""
    from batchd.api import keyring

    api = _Admin(base_url, admin_key, database_url, data_dir)
    if api.store_url is None:
        found = api.call("DELETE", f"/v1/admin/keys/{key_id}")
    else:
        row = api.direct(lambda store: store.revoke_api_key(key_id, time.time()))
        if row is None:
            raise CliError(f"No API key with id {key_id!r}", EXIT_NOT_FOUND)
        found = keyring.render(row)
    if as_json:
        _dump(found)
    else:
        click.echo(f"revoked {found['id']} ({found['workspace']})")


@click.command()
@click.option("--workspace", default=None, help="Only this workspace.")
@_options
@_handle_errors
def usage(
    workspace: str | None,
    base_url: str,
    admin_key: str | None,
    database_url: str | None,
    data_dir: str | None,
    as_json: bool,
) -> None:
    """What each workspace holds (batches in progress, requests queued, bytes stored) and its quota."""
    api = _Admin(base_url, admin_key, database_url, data_dir)
    found = api.listing(
        "/v1/admin/usage", workspace, lambda store: store.usage(workspace), lambda r: r._asdict()
    )
    if as_json:
        _dump(found)
        return
    for u in found:
        shown = [_figure(u, name) for name in ("batches", "queued_requests", "stored_bytes")]
        click.echo(
            f"{u['workspace']}  batches {shown[0]}  queued requests {shown[1]}  stored bytes {shown[2]}"
        )


def _figure(usage: dict[str, Any], name: str) -> str:
    """A usage figure, with its quota when there is one: `12/100`."""
    limit = (usage.get("quota") or {}).get(name)
    return f"{usage[name]}/{limit}" if limit else str(usage[name])


def register(group: click.Group) -> None:
    group.add_command(keys)
    group.add_command(usage)
