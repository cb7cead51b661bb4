"""Settings: one frozen object built from CLI flags over BATCHD_* env over a TOML file over defaults.

Every setting is declared once in `SETTINGS`; the CLI, the env reader, the TOML reader and the
README's configuration table all come from that registry.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from batchd import exceptions
from batchd.config import routes

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_DATA_DIR = "./batchd-data"
DEFAULT_MAX_REQUESTS = 100_000  # per batch
DEFAULT_MAX_BATCH_BYTES = 256 * 1024 * 1024  # bytes per create body
DEFAULT_BATCH_LIFETIME = 24 * 3600.0  # seconds from created_at to expires_at
DEFAULT_RETENTION = 29 * 24 * 3600.0  # seconds from created_at to archival
DEFAULT_EXPIRY_GRACE = 5.0  # seconds a running request may outlive expires_at
DEFAULT_CONCURRENCY = 256  # in-flight backend calls per process
DEFAULT_CLAIM_CHUNK = 256  # requests claimed per store round trip
DEFAULT_LEASE = 60.0  # seconds a claim is held without a heartbeat
DEFAULT_MAINTENANCE_INTERVAL = 1.0  # seconds between expiry/lease/archival sweeps
DEFAULT_MAX_ATTEMPTS = 5  # backend attempts per request, first try included
DEFAULT_MAX_CLAIMS = 5  # times a request may be claimed (crashed workers) before it is errored
DEFAULT_RETRY_BASE = 0.5  # seconds, first backoff
DEFAULT_RETRY_MAX = 30.0  # seconds, backoff ceiling
DEFAULT_REQUEST_TIMEOUT = 600.0  # seconds per backend call
DEFAULT_THINKING_BUDGET = 1024  # tokens, for the seed's {"type": "enabled"} shorthand

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|mb|gb|k|m|g)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2, "g": 1024**3, "gb": 1024**3}


def parse_duration(value: Any) -> float:
    """'24h', '30s', '1.5m', '250ms', '29d' or a number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 5m, 24h, 29d)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_size(value: Any) -> int:
    """'256MB', '64k' or a number of bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"not a size: {value!r} (use e.g. 256MB, 64KB, 1000)")
    return int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def parse_api_keys(value: Any) -> dict[str, str]:
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


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    cast: Callable[[Any], Any]
    help: str
    flag: bool = True  # exposed as a `batchd serve` option

    @property
    def env(self) -> str:
        return "BATCHD_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("host", DEFAULT_HOST, str, "Address to bind."),
    Setting("port", DEFAULT_PORT, int, "Port to bind."),
    Setting(
        "metrics_port",
        0,
        int,
        "batchd worker: serve Prometheus metrics on this port at --host (0: off).",
    ),
    Setting("data_dir", DEFAULT_DATA_DIR, str, "Directory for the SQLite database and lock."),
    Setting("database_url", "", str, "Store URL; default sqlite:///<data_dir>/batchd.db."),
    Setting(
        "api_keys",
        {},
        parse_api_keys,
        "Accepted API keys as key:workspace,...; empty accepts any key (loopback only).",
        flag=False,
    ),
    Setting("public_url", "", str, "Absolute base URL for results_url; default: a relative path."),
    Setting("max_requests", DEFAULT_MAX_REQUESTS, int, "Most requests in one batch."),
    Setting("max_batch_bytes", DEFAULT_MAX_BATCH_BYTES, parse_size, "Largest create body (e.g. 256MB)."),
    Setting(
        "batch_lifetime",
        DEFAULT_BATCH_LIFETIME,
        parse_duration,
        "Time from creation to expires_at (e.g. 24h, 30s).",
    ),
    Setting(
        "retention",
        DEFAULT_RETENTION,
        parse_duration,
        "Time from creation until results are archived (e.g. 29d).",
    ),
    Setting(
        "expiry_grace",
        DEFAULT_EXPIRY_GRACE,
        parse_duration,
        "How long a running request may outlive expires_at before it is expired.",
    ),
    Setting(
        "strict",
        False,
        parse_bool,
        "Treat everything the real API rejects (incl. the seed shorthand) as errored.",
    ),
    Setting("concurrency", DEFAULT_CONCURRENCY, int, "Most backend calls in flight per process."),
    Setting(
        "fleet_concurrency",
        0,
        int,
        "PostgreSQL: most requests running at once across all processes (0: no fleet limit).",
    ),
    Setting("claim_chunk", DEFAULT_CLAIM_CHUNK, int, "Requests claimed per store round trip."),
    Setting("lease", DEFAULT_LEASE, parse_duration, "How long a claim holds without a heartbeat."),
    Setting(
        "maintenance_interval",
        DEFAULT_MAINTENANCE_INTERVAL,
        parse_duration,
        "Time between expiry, lease-recovery and archival sweeps.",
    ),
    Setting("max_attempts", DEFAULT_MAX_ATTEMPTS, int, "Backend attempts per request (first included)."),
    Setting(
        "max_claims",
        DEFAULT_MAX_CLAIMS,
        int,
        "Times a request may be picked up again after a crash before it is errored.",
    ),
    Setting("retry_base", DEFAULT_RETRY_BASE, parse_duration, "First retry backoff."),
    Setting("retry_max", DEFAULT_RETRY_MAX, parse_duration, "Retry backoff ceiling."),
    Setting("request_timeout", DEFAULT_REQUEST_TIMEOUT, parse_duration, "Timeout of one backend call."),
    Setting(
        "thinking_budget",
        DEFAULT_THINKING_BUDGET,
        int,
        "budget_tokens given to the shorthand thinking {type: enabled}.",
    ),
    Setting("sim_latency", 0.0, parse_duration, "Simulator: latency per request."),
    Setting("sim_token_latency", 0.0, parse_duration, "Simulator: latency per output token."),
    Setting("log_level", "info", str, "Log level: debug, info, warning, error."),
    Setting(
        "group_prefixes",
        False,
        parse_bool,
        "Dispatch requests that share a prompt prefix together (see docs/backends.md).",
    ),
    Setting("gguf", "", str, "Run llama.cpp inside batchd on this GGUF file; every model routes to it."),
    Setting("gguf_parallel", 4, int, "--gguf: parallel slots, i.e. calls in flight to llama.cpp."),
    Setting("gguf_ctx", 4096, int, "--gguf: context size of each slot, in tokens."),
    Setting("gguf_threads", 0, int, "--gguf: CPU threads for llama.cpp (0: its default)."),
    Setting(
        "gguf_cache_ram",
        -1,
        int,
        "--gguf: llama.cpp's host-memory prompt cache, in MiB (0: off; -1: its default, 8 GiB).",
    ),
    Setting(
        "routes",
        (),
        routes.parse_routes,
        "Routing table: [[routes]] tables in the config file, or a JSON array of them.",
        flag=False,
    ),
)
_BY_NAME = {s.name: s for s in SETTINGS}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    metrics_port: int = 0
    data_dir: str = DEFAULT_DATA_DIR
    database_url: str = ""
    api_keys: dict[str, str] = dataclasses.field(default_factory=dict)
    public_url: str = ""
    max_requests: int = DEFAULT_MAX_REQUESTS
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES
    batch_lifetime: float = DEFAULT_BATCH_LIFETIME
    retention: float = DEFAULT_RETENTION
    expiry_grace: float = DEFAULT_EXPIRY_GRACE
    strict: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    fleet_concurrency: int = 0  # requests running at once across every process; 0: unlimited
    claim_chunk: int = DEFAULT_CLAIM_CHUNK
    lease: float = DEFAULT_LEASE
    maintenance_interval: float = DEFAULT_MAINTENANCE_INTERVAL
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_claims: int = DEFAULT_MAX_CLAIMS
    retry_base: float = DEFAULT_RETRY_BASE
    retry_max: float = DEFAULT_RETRY_MAX
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    thinking_budget: int = DEFAULT_THINKING_BUDGET
    sim_latency: float = 0.0
    sim_token_latency: float = 0.0
    log_level: str = "info"
    group_prefixes: bool = False
    gguf: str = ""
    gguf_parallel: int = 4
    gguf_ctx: int = 4096
    gguf_threads: int = 0
    gguf_cache_ram: int = -1
    routes: tuple[routes.RouteConfig, ...] = ()

    def __repr__(self) -> str:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields["api_keys"] = f"<{len(self.api_keys)} keys>"
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in fields.items()) + ")"

    @property
    def store_url(self) -> str:
        if self.database_url:
            return self.database_url
        return "sqlite:///" + str(Path(self.data_dir) / "batchd.db")

    def check(self) -> Settings:
        """Refuse settings that cannot work; returns self."""
        if not 1 <= self.port <= 65535:
            raise exceptions.ConfigError(f"port: {self.port} is not a TCP port")
        for name in (
            "max_requests",
            "max_batch_bytes",
            "concurrency",
            "claim_chunk",
            "max_attempts",
            "max_claims",
            "gguf_parallel",
            "gguf_ctx",
        ):
            if getattr(self, name) < 1:
                raise exceptions.ConfigError(f"{name}: must be at least 1")
        if self.gguf_cache_ram < -1:
            raise exceptions.ConfigError("gguf_cache_ram: must be -1 (llama.cpp's default), 0 (off) or more")
        if self.fleet_concurrency < 0:
            raise exceptions.ConfigError("fleet_concurrency: must be 0 (no limit) or more")
        for name in ("batch_lifetime", "retention", "lease", "maintenance_interval"):
            if getattr(self, name) <= 0:
                raise exceptions.ConfigError(f"{name}: must be positive")
        if not self.api_keys and not _is_loopback(self.host):
            raise exceptions.ConfigError(
                f"host: binding {self.host} needs api_keys (BATCHD_API_KEYS); "
                "any key is accepted only on loopback"
            )
        return self


def _is_loopback(host: str) -> bool:
    return host in {"localhost", "::1"} or host.startswith("127.")


def _cast(setting: Setting, value: Any, origin: str) -> Any:
    try:
        return setting.cast(value)
    except (TypeError, ValueError) as exc:
        raise exceptions.ConfigError(f"{origin}: {exc}") from exc


def load(
    overrides: Mapping[str, Any] | None = None,
    *,
    config_file: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build Settings: `overrides` (CLI flags, None = unset) > BATCHD_* env > TOML file > defaults."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    config_file = config_file or environ.get("BATCHD_CONFIG") or None
    if config_file:
        try:
            with open(config_file, "rb") as fh:
                table = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise exceptions.ConfigError(f"config file {config_file}: {exc}") from exc
        section = table.get("batchd", table)
        if section is not table and "routes" in table and "routes" not in section:
            section = {**section, "routes": table["routes"]}  # [[routes]] next to [batchd]
        for key, value in section.items():
            if key not in _BY_NAME:
                if isinstance(value, dict | list):
                    continue  # sections such as [[routes]] belong to other readers
                raise exceptions.ConfigError(f"config file {config_file}: unknown setting {key!r}")
            values[key] = _cast(_BY_NAME[key], value, f"{config_file}: {key}")
    for setting in SETTINGS:
        if setting.env in environ:
            values[setting.name] = _cast(setting, environ[setting.env], setting.env)
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = _cast(_BY_NAME[key], value, "--" + key.replace("_", "-"))
    return Settings(**values).check()
