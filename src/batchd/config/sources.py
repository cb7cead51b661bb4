"""Reading the settings: flags over BATCHD_* env over the TOML file over the defaults.

The file is checked whole before any value is used: an unknown table or key (`[[route]]` for
`[[routes]]`, a misspelt setting) stops the start with a message naming each one and the likely
intended name, rather than being ignored. A deprecated old name of a setting still works in all
three sources, with a warning in the log.
"""

from __future__ import annotations

import difflib
import logging
import os
import tomllib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from batchd import exceptions
from batchd.config.settings import SETTINGS, TABLES, Setting, Settings, env_name, option_name

logger = logging.getLogger("batchd.config")

TABLE = "batchd"  # the file's settings may sit under [batchd] as well as at its top level
_BY_NAME = {s.name: s for s in SETTINGS}
_BY_ALIAS = {alias: s for s in SETTINGS for alias in s.aliases}
_FORMS = {"routes": "[[{}]]", TABLE: "[{}]"}  # how the file writes these names; others are keys


def load(
    overrides: Mapping[str, object] | None = None,
    *,
    config_file: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build Settings: `overrides` (CLI flags, None = unset) > BATCHD_* env > TOML file > defaults."""
    environ = os.environ if environ is None else environ
    found: dict[str, Any] = {}
    config_file = config_file or environ.get("BATCHD_CONFIG") or None
    if config_file:
        found.update(_from_file(config_file))
    known = (*_BY_NAME, *_BY_ALIAS)
    found.update(_read({n: environ[env_name(n)] for n in known if env_name(n) in environ}, env_name))
    found.update(_read({k: v for k, v in (overrides or {}).items() if v is not None}, option_name))
    return Settings(**found).check()


def _read(given: Mapping[str, object], spell: Callable[[str], str], origin: str = "") -> dict[str, object]:
    """Each value one source gave, cast by its setting, by setting name.

    `given` is keyed by the names the source used, old ones included; `spell` writes a name as
    that source does (BATCHD_PORT, --port, port), for the messages.
    """
    out: dict[str, object] = {}
    for key, value in given.items():
        setting = _BY_NAME.get(key) or _BY_ALIAS[key]
        if key != setting.name:
            logger.warning(
                "%s%s is deprecated: use %s (the same setting)", origin, spell(key), spell(setting.name)
            )
            if setting.name in given:
                continue  # the new name wins
        out[setting.name] = _cast(setting, value, origin + spell(key))
    return out


def _cast(setting: Setting, value: object, origin: str) -> object:
    try:
        return setting.cast(value)
    except (TypeError, ValueError) as exc:
        raise exceptions.ConfigError(f"{origin}: {exc}") from exc


def _from_file(path: str) -> dict[str, object]:
    try:
        with open(path, "rb") as fh:
            table = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise exceptions.ConfigError(f"config file {path}: {exc}") from exc
    given: dict[str, object] = {}
    problems = []
    for prefix, key, value in _entries(table):
        if key in TABLES and isinstance(value, dict):
            problems.extend(_table(key, value, given))
        elif key not in _BY_NAME and key not in _BY_ALIAS:
            problems.append(_unknown(prefix, key, value))
        elif (declared := _BY_NAME.get(key)) and declared.file_table:
            short = key[len(declared.file_table) + 1 :]
            problems.append(f"write {key!r} as {short!r} under [{declared.file_table}]")
        elif key in given:
            problems.append(f"{key!r} is given both at the top level and under [{TABLE}]")
        else:
            given[key] = value
    if problems:
        raise exceptions.ConfigError(f"config file {path}: " + "; ".join(problems))
    return _read(given, _file_spelling, f"{path}: ")


def _table(name: str, table: dict[str, Any], given: dict[str, object]) -> list[str]:
    """The settings of one table ([web_search] provider = … is web_search_provider) into `given`."""
    problems = []
    keys = [s.name[len(name) + 1 :] for s in SETTINGS if s.file_table == name]
    for key, value in table.items():
        if key not in keys:
            text = f"unknown setting '{name}.{key}'"
            close = difflib.get_close_matches(key, keys, n=1)
            problems.append(text + (f" (did you mean '{name}.{close[0]}'?)" if close else ""))
        else:
            given[f"{name}_{key}"] = value
    return problems


def _file_spelling(name: str) -> str:
    """How the file writes a setting: its name, or `<table>.<key>` for the settings of a table."""
    table = _BY_NAME[name].file_table if name in _BY_NAME else None
    return f"{table}.{name[len(table) + 1 :]}" if table else name


def _entries(table: dict[str, Any]) -> Iterator[tuple[str, str, object]]:
    """(prefix, key, value) of every entry of the file: its top level's, then those of [batchd]."""
    section = table.get(TABLE)
    for key, value in table.items():
        if not (key == TABLE and isinstance(section, dict)):
            yield "", key, value
    if isinstance(section, dict):
        for key, value in section.items():
            yield TABLE + ".", key, value


def _unknown(prefix: str, key: str, value: object) -> str:
    """What is unknown, as the file writes it, and the known name closest to it if one is close."""
    if isinstance(value, dict):
        text = f"unknown table [{prefix}{key}]"
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        text = f"unknown table [[{prefix}{key}]]"
    else:
        text = f"unknown setting {prefix + key!r}"
    known = [*_BY_NAME] if prefix else [*_BY_NAME, TABLE]
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        form = _FORMS.get(close[0], "'{}'")
        text += f" (did you mean {form.format(prefix + close[0])}?)"
    return text
