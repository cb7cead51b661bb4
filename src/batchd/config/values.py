"""What a setting's text means: durations, sizes, booleans, API keys, log levels and hosts.

Each parser takes a value as the TOML file, an environment variable or a flag gives it (a string,
or a number, boolean or table from TOML) and returns the typed value, or raises ValueError with a
message that says what was expected.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import orjson

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|mb|gb|kib|mib|gib|k|m|g)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2, "g": 1024**3, "gb": 1024**3}
_SIZE_UNITS |= {"kib": 1024, "mib": 1024**2, "gib": 1024**3}  # KB and KiB alike: powers of two


class LogLevel(enum.StrEnum):
    """The log levels both `logging` and granian know."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


def parse_duration(value: object) -> float:
    """'24h', '30s', '1.5m', '250ms', '29d' or a number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 5m, 24h, 29d)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_size(value: object) -> int:
    """'256MB', '256MiB', '64k' or a number of bytes (units are powers of two)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"not a size: {value!r} (use e.g. 256MB, 64KB, 1000)")
    return int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]


def parse_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def parse_api_keys(value: object) -> dict[str, str]:
    """'key1:workspace1,key2' (a key without a workspace gets 'default') or a TOML table."""
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    keys: dict[str, str] = {}
    for item in str(value).split(","):
        item = item.strip()
        if item:
            key, _, workspace = item.partition(":")
            keys[key] = workspace or "default"
    return keys


def parse_list(value: object) -> tuple[str, ...]:
    """A TOML array of strings, or 'a,b,c' (empty items dropped)."""
    if isinstance(value, list | tuple):
        items = [str(v).strip() for v in value]
    else:
        items = [item.strip() for item in str(value).split(",")]
    return tuple(item for item in items if item)


def parse_choice(*choices: str) -> Callable[[object], str]:
    """A parser accepting one of `choices` (any case)."""

    def parse(value: object) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        return text

    return parse


def parse_keys(value: object) -> frozenset[str]:
    """'key1,key2' or a TOML array of keys."""
    items = value if isinstance(value, Sequence) and not isinstance(value, str) else str(value).split(",")
    return frozenset(key for key in (str(item).strip() for item in items) if key)


def is_loopback(host: str) -> bool:
    """Whether `host` (an address to bind, or a Host header's name) names this machine only.

    An IP address is parsed (any of 127.0.0.0/8, ::1, or ::ffff:127.x); of the names, only
    `localhost` counts. A name is never loopback by its look: `127.attacker.invalid` is a name
    that anyone's DNS may point anywhere.
    """
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def host_name(authority: str) -> str | None:
    """The host of a `Host` header (or an `allowed_hosts` entry) without its port: lowercased, an
    IPv6 address without its brackets, a name without its trailing dot; None if it is malformed."""
    text = authority.strip().lower()
    if text.startswith("["):
        end = text.find("]")
        rest = text[end + 1 :]
        if end < 0 or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        try:
            return str(ipaddress.IPv6Address(text[1:end]))
        except ValueError:
            return None
    name, colon, port = text.rpartition(":")
    if colon:
        if not port.isdigit() or ":" in name:  # an IPv6 address needs its brackets
            return None
        text = name
    text = text.removesuffix(".")
    if not text or any(c in text for c in "/\\@?# "):
        return None
    return text


def parse_hosts(value: object) -> tuple[str, ...]:
    """Host names, as 'batchd.lan, 10.0.0.5, [fd00::1]' or a TOML array; ports are dropped."""
    names: list[str] = []
    for item in parse_list(value):
        name = host_name(item)
        if name is None:
            raise ValueError(f"not a host name: {item!r} (use e.g. batchd.lan, 10.0.0.5, [fd00::1])")
        names.append(name)
    return tuple(names)


def parse_log_level(value: object) -> LogLevel:
    """A log level's name, in any case."""
    try:
        return LogLevel(str(value).strip().lower())
    except ValueError:
        raise ValueError(f"not a log level: {value!r} (use {', '.join(LogLevel)})") from None


Table = TypeVar("Table")


def parse_tables(
    value: Any, name: str, what: str, made: type[Table], parse: Callable[[int, Any], Table]
) -> tuple[Table, ...]:
    """`[[name]]` tables (TOML) or the same as a JSON array (env) -> each parsed by `parse(index,
    item)`; a tuple already parsed is kept. Raises ValueError."""
    if isinstance(value, str | bytes):
        if not str(value).strip():
            return ()
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"{name}: not a JSON array of {what} objects: {exc}") from exc
    if isinstance(value, tuple) and all(isinstance(v, made) for v in value):
        return value
    if not isinstance(value, list):
        raise ValueError(f"{name}: must be a list of {what} tables ([[{name}]])")
    return tuple(parse(i, item) for i, item in enumerate(value))
