"""Settings declared once (settings.py), read from flags, environment and file (sources.py), the
value parsers they use (values.py) and the routing table they carry (routes.py)."""

from __future__ import annotations

from batchd.config.settings import SETTINGS, Command, Setting, Settings, env_name, option_name
from batchd.config.sources import load
from batchd.config.values import LogLevel, parse_bool, parse_duration, parse_size

__all__ = [
    "SETTINGS",
    "Command",
    "LogLevel",
    "Setting",
    "Settings",
    "env_name",
    "load",
    "option_name",
    "parse_bool",
    "parse_duration",
    "parse_size",
]
