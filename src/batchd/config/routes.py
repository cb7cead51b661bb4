"""The routing table: `[[routes]]` in the TOML config (or JSON in BATCHD_ROUTES), checked at start.

    [[routes]]
    model = "claude-*"                    # exact name or glob (fnmatch: * ? [seq])
    backend = "openai"                    # simulated (default) | anthropic | openai | llamacpp
    base_url = "http://127.0.0.1:8000/v1"
    upstream_model = "Qwen/Qwen3-8B"      # optional; default: the requested name
    api_key_env = "VLLM_API_KEY"          # optional; the key itself never sits in the file
    concurrency = 64                      # in-flight requests to this upstream, per process
    fleet_concurrency = 16                # optional, PostgreSQL: in flight across every process
    timeout = "600s"
    web_search_provider = "searxng"       # optional; default: the [web_search] provider
    chat_template = "llama3"              # llamacpp only: a llama.cpp built-in name or a Jinja file

The first route whose `model` matches wins; unmatched models go to the simulator (a last route
with `model = "*"` is the way to configure another default).
"""

from __future__ import annotations

import dataclasses
import enum
import fnmatch
import os
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from batchd import exceptions
from batchd.config import values


class BackendKind(enum.StrEnum):
    """What serves a route's models: the value of `backend` in a route table."""

    SIMULATED = "simulated"  #: the built-in simulator (the default)
    ANTHROPIC = "anthropic"  #: an Anthropic-compatible `POST /v1/messages`
    OPENAI = "openai"  #: an OpenAI-compatible `POST /v1/chat/completions`, translated
    LLAMACPP = "llamacpp"  #: llama.cpp inside batchd on the `gguf` model


class AuthMode(enum.StrEnum):
    """The header that carries an upstream's key."""

    X_API_KEY = "x-api-key"  #: `x-api-key: KEY` (Anthropic's)
    BEARER = "bearer"  #: `authorization: Bearer KEY` (OpenAI's)


class ReasoningMode(enum.StrEnum):
    """How a request's `thinking` is switched on or off upstream."""

    CHAT_TEMPLATE_KWARGS = "chat_template_kwargs"  #: `chat_template_kwargs.enable_thinking` (vLLM, llama.cpp)
    REASONING_EFFORT = "reasoning_effort"  #: OpenAI's `reasoning_effort`
    BOTH = "both"
    NONE = "none"  #: the params as they are

    @property
    def sends_template_kwargs(self) -> bool:
        return self in (ReasoningMode.CHAT_TEMPLATE_KWARGS, ReasoningMode.BOTH)

    @property
    def sends_effort(self) -> bool:
        return self in (ReasoningMode.REASONING_EFFORT, ReasoningMode.BOTH)


SEARCH_PROVIDERS = ("local", "searxng", "brave")  # web search providers (tools/web_search/)
HTTP_BACKENDS = frozenset({BackendKind.ANTHROPIC, BackendKind.OPENAI})
DEFAULT_ROUTE_CONCURRENCY = 64  # in-flight requests per upstream
_Mode = TypeVar("_Mode", BackendKind, AuthMode, ReasoningMode)
_GLOB = re.compile(r"[*?\[]")
_KEYS = frozenset(
    {
        "chat_template",
        "model",
        "backend",
        "base_url",
        "upstream_model",
        "api_key_env",
        "concurrency",
        "fleet_concurrency",
        "timeout",
        "auth",
        "reasoning",
        "betas",
        "headers",
        "web_search_provider",
    }
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RouteConfig:
    """One `[[routes]]` entry, validated."""

    model: str
    backend: BackendKind
    base_url: str = ""
    upstream_model: str = ""
    api_key_env: str = ""
    concurrency: int = DEFAULT_ROUTE_CONCURRENCY
    fleet_concurrency: int = 0  #: calls in flight across every process sharing the database; 0: none
    timeout: float | None = None  #: seconds; None: the request_timeout setting
    auth: AuthMode | None = None  #: None: x-api-key for anthropic, bearer for openai
    #: None: chat_template_kwargs for openai, none for anthropic (llama.cpp's and vLLM's
    #: /v1/messages need chat_template_kwargs to turn thinking off)
    reasoning: ReasoningMode | None = None
    betas: tuple[str, ...] = ()  #: anthropic: extra anthropic-beta values sent on every call
    headers: tuple[tuple[str, str], ...] = ()  #: extra HTTP headers sent on every call
    web_search_provider: str = ""  #: the web search provider of this route's requests; "": the setting
    chat_template: str = ""  #: llamacpp: for a GGUF without one (a llama.cpp name or a Jinja file)

    @property
    def local_limit(self) -> int:
        """Calls in flight to this route from one process: its concurrency, never more than its
        fleet_concurrency, which no one process can exceed."""
        return min(self.concurrency, self.fleet_concurrency or self.concurrency)

    @property
    def is_glob(self) -> bool:
        return bool(_GLOB.search(self.model))

    def matches(self, model: str) -> bool:
        if self.is_glob:
            return fnmatch.fnmatchcase(model, self.model)
        return model == self.model

    def api_key(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The upstream key, read from the environment variable `api_key_env` names."""
        if not self.api_key_env:
            return None
        environ = os.environ if environ is None else environ
        key = environ.get(self.api_key_env)
        if not key:
            raise exceptions.ConfigError(
                f"routes ({self.model}): api_key_env names {self.api_key_env}, which is not set"
            )
        return key


def parse_routes(value: Any) -> tuple[RouteConfig, ...]:
    """A list of tables (TOML) or a JSON array (env) -> validated routes. Raises ValueError."""
    return values.parse_tables(value, "routes", "route", RouteConfig, _parse_route)


def _parse_route(index: int, item: Any) -> RouteConfig:
    where = f"routes[{index}]"
    if not isinstance(item, dict):
        raise ValueError(f"{where}: must be a table with model and backend")
    if "api_key" in item or "key" in item:
        raise ValueError(
            f"{where}: the key never sits in the file: set api_key_env to the variable holding it"
        )
    unknown = sorted(set(item) - _KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})")
    if not isinstance(item.get("model"), str) or not item["model"]:
        raise ValueError(f"{where}: model is required and must be a non-empty string")
    where = f"{where} ({item['model']})"
    backend = _member(BackendKind, item.get("backend", BackendKind.SIMULATED), where, "backend")
    strings = {}
    keys = (
        "base_url",
        "upstream_model",
        "api_key_env",
        "auth",
        "reasoning",
        "web_search_provider",
        "chat_template",
    )
    for key in keys:
        if key in item:
            if not isinstance(item[key], str):
                raise ValueError(f"{where}: {key} must be a string")
            strings[key] = item[key]
    base_url = strings.get("base_url", "").rstrip("/")
    if backend in HTTP_BACKENDS:
        if not base_url:
            raise ValueError(f"{where}: base_url is required for the {backend} backend")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"{where}: base_url {base_url!r} must start with http:// or https://")
    elif base_url:
        raise ValueError(f"{where}: base_url is not used by the {backend} backend")
    concurrency = item.get("concurrency", DEFAULT_ROUTE_CONCURRENCY)
    if type(concurrency) is not int or concurrency < 1:
        raise ValueError(f"{where}: concurrency must be an integer of at least 1")
    fleet_concurrency = item.get("fleet_concurrency", 0)
    if type(fleet_concurrency) is not int or fleet_concurrency < 0:
        raise ValueError(f"{where}: fleet_concurrency must be an integer: 0 (no limit) or more")
    timeout = None
    if "timeout" in item:
        from batchd.config.values import parse_duration

        try:
            timeout = parse_duration(item["timeout"])
        except ValueError as exc:
            raise ValueError(f"{where}: timeout: {exc}") from None
        if timeout <= 0:
            raise ValueError(f"{where}: timeout must be positive")
    auth = _member(AuthMode, strings["auth"], where, "auth") if strings.get("auth") else None
    reasoning = strings.get("reasoning") or None
    mode = _member(ReasoningMode, reasoning, where, "reasoning") if reasoning else None
    provider = strings.get("web_search_provider", "")
    if provider and provider not in SEARCH_PROVIDERS:
        raise ValueError(
            f"{where}: web_search_provider {provider!r} is not one of {', '.join(SEARCH_PROVIDERS)}"
        )
    if strings.get("chat_template") and backend is not BackendKind.LLAMACPP:
        raise ValueError(f"{where}: chat_template is used by the llamacpp backend only")
    betas = item.get("betas", [])
    if not isinstance(betas, list) or not all(isinstance(b, str) for b in betas):
        raise ValueError(f"{where}: betas must be a list of strings")
    headers = item.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise ValueError(f"{where}: headers must be a table of strings")
    return RouteConfig(
        model=item["model"],
        backend=backend,
        base_url=base_url,
        upstream_model=strings.get("upstream_model", ""),
        api_key_env=strings.get("api_key_env", ""),
        concurrency=concurrency,
        fleet_concurrency=fleet_concurrency,
        timeout=timeout,
        auth=auth,
        reasoning=mode,
        betas=tuple(betas),
        headers=tuple((str(k), v) for k, v in headers.items()),
        web_search_provider=provider,
        chat_template=strings.get("chat_template", ""),
    )


def _member(kind: type[_Mode], value: object, where: str, key: str) -> _Mode:
    for member in kind:
        if member == value:
            return member
    raise ValueError(f"{where}: {key} {value!r} is not one of {', '.join(kind)}")


def check(routes: tuple[RouteConfig, ...], environ: Mapping[str, str] | None = None) -> None:
    """What can only be checked against the environment at start: every named key is set."""
    for route in routes:
        route.api_key(environ)
