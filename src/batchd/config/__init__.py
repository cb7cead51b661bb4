"""Settings from flags, environment and file (settings.py) and the routing table they carry (routes.py)."""

from __future__ import annotations

from batchd.config.settings import SETTINGS, Setting, Settings, load, parse_bool, parse_duration, parse_size

__all__ = ["SETTINGS", "Setting", "Settings", "load", "parse_bool", "parse_duration", "parse_size"]
