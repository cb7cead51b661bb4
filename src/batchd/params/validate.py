"""Validation and normalisation of one batch request's `params`, as the Messages API.

The engine calls `prepare` for each request when it runs (at create time params are
only known to be JSON objects); an `exceptions.InvalidParams` becomes that request's
`errored` result. The checks are hand-written over plain dicts because they run once
per request on the hot path. Messages name the field by its dotted path, in the real
API's words (`messages.0.content.1.image.source.base64.media_type: Input should be`).

Strict mode validates exactly as the real API. Lenient mode, the default, also drops
unknown top-level keys and expands the seed shorthand described in `SHORTHAND_DOC`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from batchd import exceptions
from batchd.params import blocks as params_blocks
from batchd.params import checks as params_checks
from batchd.params import output as params_output
from batchd.params import shorthand as params_shorthand
from batchd.params import tools as params_tools

DEFAULT_THINKING_BUDGET = params_shorthand.DEFAULT_THINKING_BUDGET
MIN_THINKING_BUDGET = params_shorthand.MIN_THINKING_BUDGET
SHORTHAND_DOC = params_shorthand.SHORTHAND_DOC
METADATA_USER_ID_MAX = 256  # characters
MAX_DEPTH = params_checks.MAX_DEPTH
TOO_DEEP = params_checks.TOO_DEEP

__all__ = ["DEFAULT_THINKING_BUDGET", "MAX_DEPTH", "SHORTHAND_DOC", "TOO_DEEP", "prepare"]

_REQUIRED = ("model", "max_tokens", "messages")
_THINKING_ON = frozenset({"enabled", "adaptive"})
_THINKING_DISPLAY = ("summarized", "omitted", "updates")
_THINKING_KEYS = {
    "enabled": frozenset({"type", "budget_tokens", "display", "block_binding"}),
    "disabled": frozenset({"type"}),
    "between_tools": frozenset({"type"}),
    "adaptive": frozenset({"type", "display", "block_binding"}),
}
_THINKING_TAGS = params_checks.quoted(_THINKING_KEYS)
_Check = Callable[[Any, bool], None]


def prepare(
    params: dict[str, Any],
    *,
    strict: bool = False,
    default_thinking_budget: int = DEFAULT_THINKING_BUDGET,
) -> dict[str, Any]:
    """Validate one request's params as the Messages API would; return them normalised.

    Returns `params` itself when nothing needs normalising, else a shallow copy in
    which only the changed parts are new. `params` is never mutated; treat both as
    read-only. Raises exceptions.InvalidParams with a message naming the field path.
    """
    try:
        return _prepare(params, strict, default_thinking_budget)
    except params_checks.Invalid as exc:
        raise exceptions.InvalidParams(exc.render()) from None


def _prepare(params: Any, strict: bool, default_budget: int) -> dict[str, Any]:
    if type(params) is not dict:
        raise params_checks.Invalid(params_checks.NOT_DICT, "params")
    for key in _REQUIRED:
        if key not in params:
            raise params_checks.Invalid(params_checks.FIELD_REQUIRED, key)
    dropped: list[str] = []
    found: dict[str, Any] = {}
    # One walk of every object and array, before any check that recurses: ~0.5 µs for a
    # one-message request, 13-30 µs for one of 20 messages and 10 tools (244 values).
    if params_checks.nests_deeper(params, MAX_DEPTH):
        key = next(k for k, v in params.items() if params_checks.nests_deeper(v, MAX_DEPTH - 1))
        raise params_checks.Invalid(params_checks.TOO_DEEP, key)
    for key, value in params.items():
        check = _CHECKS.get(key)
        if check is not None:
            check(value, strict)
        elif strict:
            raise params_checks.Invalid(params_checks.EXTRA, key)
        elif key in params_shorthand.KEYS:
            found[key] = value
        else:
            dropped.append(key)

    max_tokens: int = params["max_tokens"]
    thinking: dict[str, Any] | None = params.get("thinking")
    budget_missing = False
    if thinking is not None and thinking["type"] == "enabled":
        budget = thinking.get("budget_tokens")
        if budget is None:
            budget_missing = True  # strict mode has rejected this already
        elif budget >= max_tokens:
            raise params_checks.Invalid(
                "`max_tokens` must be greater than `thinking.budget_tokens`",
                "thinking",
                "enabled",
                "budget_tokens",
            )

    out = params
    if found or dropped or budget_missing:
        out = {k: v for k, v in params.items() if k not in found and k not in dropped}
        if thinking is not None and budget_missing:
            budget = params_shorthand.thinking_budget(max_tokens, default_budget)
            out["thinking"] = {**thinking, "budget_tokens": budget}
        if found:
            params_shorthand.expand(out, found)

    if thinking is not None and thinking["type"] in _THINKING_ON:
        _check_thinking_compatible(out)
    if "output_format" in out:
        params_output.check_one_format(out)
    choice = out.get("tool_choice")
    if choice is not None and choice["type"] == "tool":
        params_tools.check_tool_choice_target(choice["name"], out.get("tools", []))
    return out


def _check_thinking_compatible(params: dict[str, Any]) -> None:
    """The sampling options and forced tool use that thinking does not allow."""
    temperature = params.get("temperature")
    if temperature is not None and temperature != 1:
        raise params_checks.Invalid(
            "`temperature` may only be set to 1 when thinking is enabled", "temperature"
        )
    if params.get("top_k") is not None:
        raise params_checks.Invalid("`top_k` may not be set when thinking is enabled", "top_k")
    top_p = params.get("top_p")
    if top_p is not None and top_p < 0.95:
        raise params_checks.Invalid(
            "`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled",
            "top_p",
        )
    choice = params.get("tool_choice")
    if choice is not None and choice["type"] in params_tools.FORCING_TOOL_CHOICES:
        raise params_checks.Invalid(
            "Thinking may not be enabled when tool_choice forces tool use.",
            "tool_choice",
        )


# -- one check per top-level key ---------------------------------------------------


def _model(value: Any, strict: bool) -> None:
    if type(value) is not str:
        raise params_checks.Invalid(params_checks.NOT_STR, "model")
    if not value:
        raise params_checks.Invalid("String should have at least 1 character", "model")


def _max_tokens(value: Any, strict: bool) -> None:
    if type(value) is not int:
        raise params_checks.Invalid(params_checks.NOT_INT, "max_tokens")
    if value < 1:
        # The Messages API allows 0 (cache pre-warming); batches do not.
        raise params_checks.Invalid("Input should be greater than or equal to 1", "max_tokens")


def _unit_interval(key: str) -> _Check:
    def check(value: Any, strict: bool) -> None:
        if type(value) is not float and type(value) is not int:
            raise params_checks.Invalid(params_checks.NOT_NUMBER, key)
        if value < 0:
            raise params_checks.Invalid("Input should be greater than or equal to 0", key)
        if value > 1:
            raise params_checks.Invalid("Input should be less than or equal to 1", key)

    return check


def _top_k(value: Any, strict: bool) -> None:
    if type(value) is not int:
        raise params_checks.Invalid(params_checks.NOT_INT, "top_k")
    if value < 0:
        raise params_checks.Invalid("Input should be greater than or equal to 0", "top_k")


def _stop_sequences(value: Any, strict: bool) -> None:
    try:
        params_checks.str_list(value)
    except params_checks.Invalid as exc:
        raise exc.under("stop_sequences") from None


def _metadata(value: Any, strict: bool) -> None:
    if type(value) is not dict:
        raise params_checks.Invalid(params_checks.NOT_DICT, "metadata")
    try:
        params_checks.optional_str(value, "user_id")
        user_id = value.get("user_id")
        if user_id is not None and len(user_id) > METADATA_USER_ID_MAX:
            raise params_checks.Invalid(
                f"String should have at most {METADATA_USER_ID_MAX} characters",
                "user_id",
            )
        if strict:
            params_checks.no_extra(value, ("user_id",))
    except params_checks.Invalid as exc:
        raise exc.under("metadata") from None


def _stream(value: Any, strict: bool) -> None:
    if value is True:
        raise params_checks.Invalid(
            "batch requests cannot be streamed; omit `stream` or set it to false",
            "stream",
        )
    if value is not False:
        raise params_checks.Invalid(params_checks.NOT_BOOL, "stream")


def _thinking(value: Any, strict: bool) -> None:
    if type(value) is not dict:
        raise params_checks.Invalid(params_checks.NOT_DICT, "thinking")
    kind = value.get("type")
    if type(kind) is not str or kind not in _THINKING_KEYS:
        raise params_checks.bad_tag(value, _THINKING_TAGS).under("thinking")
    try:
        if kind == "enabled":
            if "budget_tokens" in value:
                budget = value["budget_tokens"]
                if type(budget) is not int:
                    raise params_checks.Invalid(params_checks.NOT_INT, "budget_tokens")
                budget_min = MIN_THINKING_BUDGET
                if budget < budget_min:
                    message = f"Input should be greater than or equal to {budget_min}"
                    raise params_checks.Invalid(message, "budget_tokens")
            elif strict:
                raise params_checks.Invalid(params_checks.FIELD_REQUIRED, "budget_tokens")
        if kind in _THINKING_ON:
            params_checks.optional_literal(value, "display", _THINKING_DISPLAY)
            params_checks.optional_dict(value, "block_binding")
        if strict:
            params_checks.no_extra(value, _THINKING_KEYS[kind])
    except params_checks.Invalid as exc:
        raise exc.under("thinking", kind) from None


def _billing_policy(value: Any, strict: bool) -> None:
    if value is None:
        return
    if type(value) is not dict:
        raise params_checks.Invalid(params_checks.NOT_DICT, "billing_policy")
    if value.get("bill_to") == "user_profile":
        raise params_checks.Invalid(
            "Message Batches does not support billing a user profile; omit "
            'billing_policy or set "bill_to": "self"',
            "billing_policy",
            "bill_to",
        )


def _literal(key: str, allowed: tuple[str, ...], *, nullable: bool = False) -> _Check:
    message = params_checks.one_of(allowed)

    def check(value: Any, strict: bool) -> None:
        if value is None and nullable:
            return
        if type(value) is not str or value not in allowed:
            raise params_checks.Invalid(message, key)

    return check


_KIND_NAMES: dict[type, str] = {str: "string", dict: "dictionary", list: "list"}


def _loose(key: str, *kinds: type) -> _Check:
    """A check of the JSON kind only (or null), for keys passed through unexamined."""
    message = "Input should be a valid " + " or ".join(_KIND_NAMES[k] for k in kinds)

    def check(value: Any, strict: bool) -> None:
        if value is not None and type(value) not in kinds:
            raise params_checks.Invalid(message, key)

    return check


# The keys of the SDK's MessageCreateParams and BetaMessageCreateParams that are body
# fields (`betas`, `user_profile_id` and `workspace_id` are sent as headers), plus the
# sampling options the SDK dropped from its signatures but still forwards in params.
_CHECKS: dict[str, _Check] = {
    "model": _model,
    "max_tokens": _max_tokens,
    "messages": params_blocks.check_messages,
    "system": params_blocks.check_system,
    "stop_sequences": _stop_sequences,
    "temperature": _unit_interval("temperature"),
    "top_p": _unit_interval("top_p"),
    "top_k": _top_k,
    "metadata": _metadata,
    "stream": _stream,
    "thinking": _thinking,
    "tools": params_tools.check_tools,
    "tool_choice": params_tools.check_tool_choice,
    "service_tier": _literal("service_tier", ("auto", "standard_only")),
    "speed": _literal("speed", ("standard", "fast"), nullable=True),
    "billing_policy": _billing_policy,
    "inference_geo": _loose("inference_geo", str),
    "container": _loose("container", str, dict),
    "fallback_credit_token": _loose("fallback_credit_token", str, dict),
    "fallbacks": _loose("fallbacks", list, str),
    "mcp_servers": _loose("mcp_servers", list),
    "cache_control": _loose("cache_control", dict),
    "compaction": _loose("compaction", dict),
    "context_management": _loose("context_management", dict),
    "diagnostics": _loose("diagnostics", dict),
    "output_config": params_output.check_output_config,
    "output_format": params_output.check_output_format,
    "thread": _loose("thread", dict),
}


def decode(raw: bytes) -> dict[str, Any]:
    """A stored request's params, as the engine reads them before `prepare`: a JSON object, else
    `InvalidParams` (never a crash: that request ends errored)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:  # cannot happen for stored params, but never crash
        raise exceptions.InvalidParams(f"params: invalid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise exceptions.InvalidParams("params: Input should be a valid dictionary")
    return value
