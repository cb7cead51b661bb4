"""Settings: one frozen object built from CLI flags over BATCHD_* env over a TOML file over defaults.

Each setting is declared once, as a field of `Settings` made by `setting()`: its type, default,
cast, help, bounds, the commands that take it as a flag and any deprecated old names. `SETTINGS`
reads those declarations back; the CLI options (cli/commands.py), the readers of the file, env and
flags (sources.py), `Settings.check` and the README test all come from it.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from batchd import exceptions
from batchd.config import quotas as quota_rules
from batchd.config import routes, values, webhooks
from batchd.config import weights as weight_rules

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
DEFAULT_TAKEOVER_AFTER = 5.0  # seconds a fleet worker's lock is free before others take its requests
DEFAULT_MAINTENANCE_INTERVAL = 1.0  # seconds between expiry/lease/archival sweeps
DEFAULT_MAX_ATTEMPTS = 5  # backend attempts per request, first try included
DEFAULT_MAX_CLAIMS = 5  # times a request may be claimed (crashed workers) before it is errored
DEFAULT_RETRY_BASE = 0.5  # seconds, first backoff
DEFAULT_RETRY_MAX = 30.0  # seconds, backoff ceiling
DEFAULT_REQUEST_TIMEOUT = 600.0  # seconds per backend call
DEFAULT_THINKING_BUDGET = 1024  # tokens, for the seed's {"type": "enabled"} shorthand
DEFAULT_TOOL_MAX_ITERATIONS = 10  # model calls per request with server tools, as Anthropic's API
DEFAULT_WEB_FETCH_MAX_BYTES = 10 * 1024 * 1024  # bytes of one fetched page or PDF
DEFAULT_WEB_FETCH_TIMEOUT = 30.0  # seconds for one fetch, redirects included
DEFAULT_MAX_FILE_BYTES = 100 * 1024 * 1024  # bytes of one Files API upload
DEFAULT_CONTAINER_IDLE = 3600.0  # seconds a code-execution container lives unused, as Anthropic's
# Settings named <table>_<key> are written `[<table>] <key> = …` in the TOML file.
TABLES = ("web_search", "web_fetch", "code_execution")
DEFAULT_SESSION_IDLE = 12 * 3600.0  # seconds a dashboard session lives unused
DEFAULT_SESSION_LIFETIME = 7 * 86400.0  # seconds a dashboard session lives at most
DEFAULT_LOGIN_ATTEMPTS = 10  # dashboard logins a client address may try per minute
# Connections (batchd serve): what one client may hold of the server; README "Connections and limits".
DEFAULT_MAX_HEADER_BYTES = 417_792  # bytes of request line and headers; granian's HTTP/1 read buffer
DEFAULT_HEADER_TIMEOUT = 20.0  # seconds for a request's headers to arrive; also the keep-alive idle time
DEFAULT_BODY_TIMEOUT = 60.0  # seconds a request's body may keep the server waiting, plus 1 s per MB declared
DEFAULT_MAX_CONNECTIONS = 512  # open client connections; further ones wait in the kernel's queue
DEFAULT_SHUTDOWN_TIMEOUT = 30.0  # seconds from SIGTERM until a shutdown that has not finished is forced
HEADER_TIMEOUT_MAX = 60.0  # seconds: granian's ceiling for its header-read timer
# Idempotent create and webhooks (issue 17).
DEFAULT_IDEMPOTENCY_WINDOW = 24 * 3600.0  # seconds an Idempotency-Key answers its batch
DEFAULT_WEBHOOK_TIMEOUT = 10.0  # seconds for one delivery attempt
DEFAULT_WEBHOOK_RETRY_BASE = 5.0  # seconds, first delivery backoff
DEFAULT_WEBHOOK_RETRY_MAX = 3600.0  # seconds, delivery backoff ceiling
DEFAULT_WEBHOOK_GIVE_UP_AFTER = 24 * 3600.0  # seconds of retries before a delivery is dead
DEFAULT_WEBHOOK_POLL_INTERVAL = 1.0  # seconds between looks for deliveries due

T = typing.TypeVar("T")


class Command(enum.StrEnum):
    """The commands that run an engine and take the settings as flags."""

    SERVE = "serve"
    WORKER = "worker"


ALL_COMMANDS = frozenset(Command)
NO_FLAG: frozenset[Command] = frozenset()  # set in the file or the environment only
SERVE_ONLY = frozenset({Command.SERVE})  # the HTTP server's settings


@dataclasses.dataclass(frozen=True)
class Bounds:
    """The values a number may take: from `low` (excluded when `low_open`) up to `high`."""

    low: float
    high: float = math.inf
    low_open: bool = False
    message: str = ""  #: what a value out of bounds is told, `{value}` filled in; default from the bounds

    def problem(self, value: float) -> str | None:
        """None when `value` is within bounds, else what is wrong with it."""
        below = value <= self.low if self.low_open else value < self.low
        if not (below or value > self.high):
            return None
        if self.message:
            return self.message.format(value=value)
        if self.low_open:
            return "must be positive" if self.low == 0 else f"must be more than {self.low:g}"
        return f"must be at least {self.low:g}"


AT_LEAST_1 = Bounds(1)
POSITIVE = Bounds(0, low_open=True)
NOT_NEGATIVE = Bounds(0, message="must be 0 (no limit) or more")


def env_name(name: str) -> str:
    return "BATCHD_" + name.upper()


def option_name(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting as declared on `Settings` (see `setting()`)."""

    name: str
    default: object
    cast: Callable[[Any], object]  #: the value as the file, env or a flag gives it -> the typed value
    help: str
    bounds: Bounds | None = None
    commands: frozenset[Command] = ALL_COMMANDS  #: the commands that take it as a flag
    aliases: tuple[str, ...] = ()  #: deprecated old names, still read from the file, env and flags

    @property
    def env(self) -> str:
        return env_name(self.name)

    @property
    def file_table(self) -> str | None:
        """The TOML table the file writes this setting under ([web_search] provider), or None."""
        return next((t for t in TABLES if self.name.startswith(t + "_")), None)

    @property
    def option(self) -> str:
        return option_name(self.name)

    @property
    def default_text(self) -> str:
        """The default as --help shows it."""
        default = self.default.value if isinstance(self.default, enum.Enum) else self.default
        return repr(default)


_DECLARATION = "batchd.setting"  # the key of a field's metadata that holds its Setting


def setting(
    default: T,
    cast: Callable[[Any], T],
    help: str,
    *,
    bounds: Bounds | None = None,
    commands: frozenset[Command] = ALL_COMMANDS,
    aliases: tuple[str, ...] = (),
) -> T:
    """Declares a field of `Settings` as a setting; the field's name is the setting's name."""
    declared = Setting("", default, cast, help, bounds, commands, aliases)
    metadata = {_DECLARATION: declared}
    if isinstance(default, dict):  # a mutable default: each Settings gets its own copy
        return typing.cast(T, dataclasses.field(default_factory=default.copy, metadata=metadata))
    return dataclasses.field(default=default, metadata=metadata)  # typed as its default, as mypy sees it


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    host: str = setting(DEFAULT_HOST, str, "Address to bind.")
    port: int = setting(
        DEFAULT_PORT,
        int,
        "Port to bind.",
        bounds=Bounds(1, 65535, message="{value} is not a TCP port"),
        commands=SERVE_ONLY,
    )
    metrics_port: int = setting(
        0,
        int,
        "batchd worker: serve Prometheus metrics on this port at --host (0: off).",
        commands=frozenset({Command.WORKER}),  # serve has /metrics
    )
    data_dir: str = setting(DEFAULT_DATA_DIR, str, "Directory for the SQLite database and lock.")
    database_url: str = setting("", str, "Store URL; default sqlite:///<data_dir>/batchd.db.")
    api_keys: dict[str, str] = setting(  # noqa: RUF009 - setting() declares the field, each gets a copy
        {},
        values.parse_api_keys,
        "Accepted API keys as key:workspace,...; empty accepts any key (loopback only).",
        commands=NO_FLAG,  # a key on the command line would show in `ps`
    )
    metrics_keys: frozenset[str] = setting(
        frozenset(),
        values.parse_keys,
        "Keys that may read /metrics and a worker's --metrics-port, as key,...; the API keys may not.",
        commands=NO_FLAG,  # a key on the command line would show in `ps`
    )
    public_url: str = setting("", str, "Absolute base URL for results_url; default: a relative path.")
    allowed_hosts: tuple[str, ...] = setting(
        (),
        values.parse_hosts,
        "Host names served besides loopback ones (name,...); without keys on loopback, no others are.",
        commands=frozenset({Command.SERVE}),
    )
    session_idle: float = setting(
        DEFAULT_SESSION_IDLE,
        values.parse_duration,
        "Dashboard: a login session ends after this long unused.",
        bounds=POSITIVE,
        commands=frozenset({Command.SERVE}),
    )
    session_lifetime: float = setting(
        DEFAULT_SESSION_LIFETIME,
        values.parse_duration,
        "Dashboard: a login session ends this long after the login, used or not.",
        bounds=POSITIVE,
        commands=frozenset({Command.SERVE}),
    )
    login_attempts: int = setting(
        DEFAULT_LOGIN_ATTEMPTS,
        int,
        "Dashboard: logins one client address may try per minute (then 429).",
        bounds=AT_LEAST_1,
        commands=frozenset({Command.SERVE}),
    )
    max_requests: int = setting(DEFAULT_MAX_REQUESTS, int, "Most requests in one batch.", bounds=AT_LEAST_1)
    max_batch_bytes: int = setting(
        DEFAULT_MAX_BATCH_BYTES, values.parse_size, "Largest create body (e.g. 256MB).", bounds=AT_LEAST_1
    )
    # Connections: what one client may hold of `batchd serve` (cli/server.py, api/deadline.py).
    max_header_bytes: int = setting(
        DEFAULT_MAX_HEADER_BYTES,
        values.parse_size,
        "Longest request line and headers (e.g. 408KB); longer ones get 431.",
        bounds=Bounds(8192, message="must be at least 8192 (8KB)"),
        commands=SERVE_ONLY,
    )
    header_timeout: float = setting(
        DEFAULT_HEADER_TIMEOUT,
        values.parse_duration,
        "Time for a request's headers to arrive; also how long an idle connection is kept.",
        bounds=Bounds(0, HEADER_TIMEOUT_MAX, low_open=True, message="must be more than 0s and at most 60s"),
        commands=SERVE_ONLY,
    )
    body_timeout: float = setting(
        DEFAULT_BODY_TIMEOUT,
        values.parse_duration,
        "Time a request's body may keep the server waiting, plus 1s per MB it declares; then 408.",
        bounds=POSITIVE,
        commands=SERVE_ONLY,
    )
    max_connections: int = setting(
        DEFAULT_MAX_CONNECTIONS,
        int,
        "Most open client connections; kept below the open-file limit. Others wait to be accepted.",
        bounds=AT_LEAST_1,
        commands=SERVE_ONLY,
    )
    shutdown_timeout: float = setting(
        DEFAULT_SHUTDOWN_TIMEOUT,
        values.parse_duration,
        "Time SIGTERM gives requests and the engine to finish before the server process is killed.",
        bounds=POSITIVE,
        commands=SERVE_ONLY,
    )
    batch_lifetime: float = setting(
        DEFAULT_BATCH_LIFETIME,
        values.parse_duration,
        "Time from creation to expires_at (e.g. 24h, 30s).",
        bounds=POSITIVE,
    )
    retention: float = setting(
        DEFAULT_RETENTION,
        values.parse_duration,
        "Time from creation until results are archived (e.g. 29d).",
        bounds=POSITIVE,
    )
    expiry_grace: float = setting(
        DEFAULT_EXPIRY_GRACE,
        values.parse_duration,
        "How long a running request may outlive expires_at before it is expired.",
    )
    strict: bool = setting(
        False,
        values.parse_bool,
        "Treat everything the real API rejects (incl. the seed shorthand) as errored.",
    )
    concurrency: int = setting(
        DEFAULT_CONCURRENCY, int, "Most backend calls in flight per process.", bounds=AT_LEAST_1
    )
    fleet_max_running: int = setting(
        0,
        int,
        "PostgreSQL: most requests running at once across all processes (0: no fleet limit).",
        bounds=Bounds(0, message="must be 0 (no limit) or more"),
        # The old name, which a route's fleet_concurrency (its calls in flight) also has.
        aliases=("fleet_concurrency",),
    )
    claim_chunk: int = setting(
        DEFAULT_CLAIM_CHUNK, int, "Requests claimed per store round trip.", bounds=AT_LEAST_1
    )
    lease: float = setting(
        DEFAULT_LEASE, values.parse_duration, "How long a claim holds without a heartbeat.", bounds=POSITIVE
    )
    takeover_after: float = setting(
        DEFAULT_TAKEOVER_AFTER,
        values.parse_duration,
        "PostgreSQL: how long a process may be cut off from the database before the others take over"
        " its requests (a killed one's are taken after this long; it stops them after half).",
        bounds=Bounds(1, message="must be at least 1s"),
    )
    maintenance_interval: float = setting(
        DEFAULT_MAINTENANCE_INTERVAL,
        values.parse_duration,
        "Time between expiry, lease-recovery and archival sweeps.",
        bounds=POSITIVE,
    )
    max_attempts: int = setting(
        DEFAULT_MAX_ATTEMPTS, int, "Backend attempts per request (first included).", bounds=AT_LEAST_1
    )
    max_claims: int = setting(
        DEFAULT_MAX_CLAIMS,
        int,
        "Times a request may be picked up again after a crash before it is errored.",
        bounds=AT_LEAST_1,
    )
    retry_base: float = setting(DEFAULT_RETRY_BASE, values.parse_duration, "First retry backoff.")
    retry_max: float = setting(DEFAULT_RETRY_MAX, values.parse_duration, "Retry backoff ceiling.")
    request_timeout: float = setting(
        DEFAULT_REQUEST_TIMEOUT, values.parse_duration, "Timeout of one backend call."
    )
    thinking_budget: int = setting(
        DEFAULT_THINKING_BUDGET, int, "budget_tokens given to the shorthand thinking {type: enabled}."
    )
    sim_latency: float = setting(0.0, values.parse_duration, "Simulator: latency per request.")
    sim_token_latency: float = setting(0.0, values.parse_duration, "Simulator: latency per output token.")
    log_level: values.LogLevel = setting(  # noqa: RUF009 - setting() declares the field (an enum member)
        values.LogLevel.INFO, values.parse_log_level, "Log level: debug, info, warning, error."
    )
    group_prefixes: bool = setting(
        False,
        values.parse_bool,
        "Dispatch requests that share a prompt prefix together (see docs/backends.md).",
    )
    gguf: str = setting("", str, "Run llama.cpp inside batchd on this GGUF file; every model routes to it.")
    gguf_parallel: int = setting(
        4, int, "--gguf: parallel slots, i.e. calls in flight to llama.cpp.", bounds=AT_LEAST_1
    )
    gguf_ctx: int = setting(4096, int, "--gguf: context size of each slot, in tokens.", bounds=AT_LEAST_1)
    gguf_threads: int = setting(0, int, "--gguf: CPU threads for llama.cpp (0: its default).")
    gguf_cache_ram: int = setting(
        -1,
        int,
        "--gguf: llama.cpp's host-memory prompt cache, in MiB (0: off; -1: its default, 8 GiB).",
        bounds=Bounds(-1, message="must be -1 (llama.cpp's default), 0 (off) or more"),
    )
    tool_max_iterations: int = setting(
        DEFAULT_TOOL_MAX_ITERATIONS,
        int,
        "Server tools: model calls per request; at the cap the answer ends with stop_reason pause_turn.",
        bounds=AT_LEAST_1,
    )
    server_tools_key: str = setting(
        "",
        str,
        "Server tools: the secret of batchd's encrypted_content/encrypted_index tokens "
        "(default: 32 random bytes generated once and kept in the store, shared by every process).",
        commands=NO_FLAG,  # a secret on the command line would show in `ps`
    )
    web_search_provider: str = setting(
        "local",
        values.parse_choice(*routes.SEARCH_PROVIDERS),
        "Web search: the provider, local, searxng or brave (a route may set its own).",
    )
    web_search_index: str = setting(
        "", str, "Web search, local provider: the index file built by `batchd index build`."
    )
    web_search_max_results: int = setting(
        5,
        int,
        "Web search: results returned per search.",
        bounds=Bounds(1, 20, message="{value} is not between 1 and 20"),
    )
    web_search_searxng_url: str = setting("", str, "Web search, searxng provider: the SearXNG base URL.")
    web_search_brave_api_key_env: str = setting(
        "BRAVE_API_KEY", str, "Web search, brave provider: the environment variable holding the API key."
    )
    web_fetch_allowed_hosts: tuple[str, ...] = setting(
        (),
        values.parse_list,
        "Web fetch: hosts or address ranges reachable although loopback, private or link-local.",
    )
    web_fetch_max_bytes: int = setting(
        DEFAULT_WEB_FETCH_MAX_BYTES, values.parse_size, "Web fetch: largest page or PDF.", bounds=AT_LEAST_1
    )
    web_fetch_timeout: float = setting(
        DEFAULT_WEB_FETCH_TIMEOUT, values.parse_duration, "Web fetch: time for one fetch.", bounds=POSITIVE
    )
    code_execution_enabled: bool = setting(
        True,
        values.parse_bool,
        "Code execution: run the code_execution tool in a sandbox (false: unavailable).",
    )
    code_execution_bwrap: str = setting("bwrap", str, "Code execution: the bubblewrap program.")
    code_execution_python: str = setting(
        "/usr/bin/python3", str, "Code execution: the Python the sandbox runs (bound read-only with /usr)."
    )
    code_execution_packages: str = setting(
        "",
        str,
        "Code execution: a directory of extra packages (`pip install --target DIR numpy`), read-only.",
    )
    code_execution_dir: str = setting(
        "",
        str,
        "Code execution: where containers live (default: the data directory's containers/; as root "
        "/var/lib/batchd/containers/<digest of the data directory>, which the sandbox user can reach).",
    )
    code_execution_user: int = setting(
        65534,
        int,
        "Code execution: the uid and gid the sandbox runs as when batchd runs as root.",
        bounds=AT_LEAST_1,
    )
    code_execution_cpu_seconds: float = setting(
        30.0, values.parse_duration, "Code execution: CPU time of one program or cell.", bounds=POSITIVE
    )
    code_execution_wall_seconds: float = setting(
        90.0,
        values.parse_duration,
        "Code execution: wall-clock time of one program or cell.",
        bounds=POSITIVE,
    )
    code_execution_memory: int = setting(
        1 << 30,
        values.parse_size,
        "Code execution: address space of one sandboxed process.",
        bounds=AT_LEAST_1,
    )
    code_execution_processes: int = setting(
        64, int, "Code execution: processes and threads a container may run at once.", bounds=AT_LEAST_1
    )
    code_execution_open_files: int = setting(
        256, int, "Code execution: open files per sandboxed process.", bounds=AT_LEAST_1
    )
    code_execution_file_size: int = setting(
        100 << 20, values.parse_size, "Code execution: largest file a program may write.", bounds=AT_LEAST_1
    )
    code_execution_output_bytes: int = setting(
        1 << 20,
        values.parse_size,
        "Code execution: stdout (and stderr) kept per program; the rest is cut.",
        bounds=AT_LEAST_1,
    )
    code_execution_container_idle: float = setting(
        DEFAULT_CONTAINER_IDLE,
        values.parse_duration,
        "Code execution: a container unused this long expires and is removed.",
        bounds=POSITIVE,
    )
    code_execution_max_containers: int = setting(
        16,
        int,
        "Code execution: containers running at once per process; more requests wait.",
        bounds=AT_LEAST_1,
    )
    code_execution_max_output_file: int = setting(
        10 << 20,
        values.parse_size,
        "Code execution: largest output file kept for the Files API.",
        bounds=AT_LEAST_1,
    )
    max_file_bytes: int = setting(
        DEFAULT_MAX_FILE_BYTES,
        values.parse_size,
        "Files API: largest upload (POST /v1/files), for container_upload.",
        bounds=AT_LEAST_1,
    )
    # Teams (issue 17): managed API keys and quotas per workspace; see docs/teams.md.
    managed_keys: bool = setting(
        False,
        values.parse_bool,
        "Also accept the API keys kept in the store (batchd keys create); keys are then always required.",
    )
    quota_queued_requests: int = setting(
        0,
        int,
        "Most requests one workspace may have pending or running (0: no limit); then create gets 429.",
        bounds=NOT_NEGATIVE,
        commands=SERVE_ONLY,
    )
    quota_batches: int = setting(
        0,
        int,
        "Most batches one workspace may have in progress (0: no limit); then create gets 429.",
        bounds=NOT_NEGATIVE,
        commands=SERVE_ONLY,
    )
    quota_stored_bytes: int = setting(
        0,
        values.parse_size,
        "Most bytes of requests one workspace may keep until deleted or archived (0: no limit).",
        commands=SERVE_ONLY,
    )
    quotas: dict[str, dict[str, int]] = setting(  # noqa: RUF009 - setting() declares the field
        {},
        quota_rules.parse_overrides,
        "Per-workspace quotas: [quotas.NAME] tables in the config file, or a JSON object of them.",
        commands=NO_FLAG,
    )
    # -- idempotent create and webhooks (issue 17) --
    idempotency_window: float = setting(
        DEFAULT_IDEMPOTENCY_WINDOW,
        values.parse_duration,
        "How long an Idempotency-Key answers the batch it created.",
        bounds=POSITIVE,
    )
    webhook_allowed_hosts: tuple[str, ...] = setting(
        (),
        values.parse_list,
        "Webhooks: hosts or address ranges deliveries may reach although loopback, private or link-local.",
    )
    webhook_timeout: float = setting(
        DEFAULT_WEBHOOK_TIMEOUT,
        values.parse_duration,
        "Webhooks: time for one delivery attempt.",
        bounds=POSITIVE,
    )
    webhook_retry_base: float = setting(
        DEFAULT_WEBHOOK_RETRY_BASE,
        values.parse_duration,
        "Webhooks: first retry backoff (exponential, with jitter).",
        bounds=POSITIVE,
    )
    webhook_retry_max: float = setting(
        DEFAULT_WEBHOOK_RETRY_MAX, values.parse_duration, "Webhooks: retry backoff ceiling.", bounds=POSITIVE
    )
    webhook_give_up_after: float = setting(
        DEFAULT_WEBHOOK_GIVE_UP_AFTER,
        values.parse_duration,
        "Webhooks: how long a delivery is retried before it is dead (dead-letter).",
        bounds=POSITIVE,
    )
    webhook_poll_interval: float = setting(
        DEFAULT_WEBHOOK_POLL_INTERVAL,
        values.parse_duration,
        "Webhooks: time between looks for deliveries due.",
        bounds=POSITIVE,
    )
    webhooks: tuple[webhooks.WebhookConfig, ...] = setting(
        (),
        webhooks.parse_webhooks,
        "Webhook endpoints of the configuration: [[webhooks]] tables (workspace, url, secret_env), "
        "or a JSON array of them.",
        commands=NO_FLAG,
    )
    gguf_chat_template: str = setting(
        "",
        str,
        "--gguf: chat template for a GGUF that ships none: a llama.cpp built-in name (chatml, llama3, "
        "gemma, …) or a Jinja file. Without, such a model gets ChatML (and a warning).",
    )
    gguf_embeddings: bool = setting(
        False,
        values.parse_bool,
        "--gguf: llama.cpp also serves /v1/embeddings (OpenAI batch lines); pooling as the GGUF "
        "declares, else mean.",
    )
    # Fair scheduling (issue 15): see store/shares.py, engine/admission.py and README "Scheduling".
    realtime_reserve: int = setting(
        0,
        int,
        "Slots of each route kept from batch work for realtime calls (/v1/messages).",
        bounds=NOT_NEGATIVE,
        commands=SERVE_ONLY,  # a worker answers no realtime call
    )
    adaptive_concurrency: bool = setting(
        True,
        values.parse_bool,
        "Per route, batch calls in flight follow the upstream's latency and overload answers (429, "
        "503, 529, timeouts), up to the route's concurrency (engine/adaptive.py); false: always all.",
    )
    adaptive_tolerance: float = setting(
        1.5,
        float,
        "adaptive_concurrency: how much slower than at the floor batch calls may get before their "
        "limit shrinks (1.5: half again the upstream's idle latency).",
        bounds=Bounds(1, low_open=True),
    )
    adaptive_min_concurrency: int = setting(
        1, int, "adaptive_concurrency: the fewest batch calls a route lets in at once.", bounds=AT_LEAST_1
    )
    adaptive_latency: str = setting(
        "realtime",
        values.parse_choice("realtime", "always"),
        "adaptive_concurrency: when batch calls' latency bounds their limit: while realtime calls "
        "use the route (realtime; else only overload cuts it), or always.",
    )
    weights: dict[str, float] = setting(  # noqa: RUF009 - setting() declares the field
        {},
        weight_rules.parse_weights,
        "Per-workspace scheduling weights: a [weights] table (workspace = weight), or a JSON object.",
        commands=NO_FLAG,
    )
    routes: tuple[routes.RouteConfig, ...] = setting(
        (),
        routes.parse_routes,
        "Routing table: [[routes]] tables in the config file, or a JSON array of them.",
        commands=NO_FLAG,
    )

    def __repr__(self) -> str:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields["api_keys"] = f"<{len(self.api_keys)} keys>"
        fields["server_tools_key"] = "<set>" if self.server_tools_key else ""
        fields["metrics_keys"] = f"<{len(self.metrics_keys)} keys>"
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in fields.items()) + ")"

    @property
    def store_url(self) -> str:
        if self.database_url:
            return self.database_url
        return "sqlite:///" + str(Path(self.data_dir) / "batchd.db")

    def check(self) -> Settings:
        """Refuse settings that cannot work; returns self."""
        for declared in SETTINGS:
            if declared.bounds is not None:
                problem = declared.bounds.problem(getattr(self, declared.name))
                if problem:
                    raise exceptions.ConfigError(f"{declared.name}: {problem}")
        if not self.keys_required and not values.is_loopback(self.host):
            raise exceptions.ConfigError(
                f"host: binding {self.host} needs api_keys (BATCHD_API_KEYS) or managed_keys; "
                "any key is accepted only on loopback"
            )
        return self

    @property
    def keys_required(self) -> bool:
        """Whether callers need a key: some are configured, or the store's keys are used."""
        return bool(self.api_keys) or self.managed_keys

    def quota(self, workspace: str) -> quota_rules.Quota:
        """The quota of `workspace`: the quota_* defaults, with its [quotas.NAME] table over them."""
        default = quota_rules.Quota(
            queued_requests=self.quota_queued_requests,
            batches=self.quota_batches,
            stored_bytes=self.quota_stored_bytes,
        )
        return quota_rules.effective(default, self.quotas, workspace)


SETTINGS: tuple[Setting, ...] = tuple(
    dataclasses.replace(f.metadata[_DECLARATION], name=f.name) for f in dataclasses.fields(Settings)
)
