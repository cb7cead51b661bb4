"""`output_config` and the beta `output_format`: structured outputs (a JSON schema the answer
must satisfy) and effort.

The format is checked for its shape only, `{"type": "json_schema", "schema": {...}}`; the
schema itself is the model's (or the upstream's) to honour. Other `output_config` keys pass
through, as Anthropic adds them, unless the mode is strict.
"""

from __future__ import annotations

from typing import Any

from batchd.params import checks as params_checks

_CONFIG_KEYS = ("effort", "format")
_FORMAT_KEYS = ("type", "schema")


def check_output_config(value: Any, strict: bool) -> None:
    if value is None:
        return
    if type(value) is not dict:
        raise params_checks.Invalid(params_checks.NOT_DICT, "output_config")
    if strict:
        try:
            params_checks.no_extra(value, _CONFIG_KEYS)
        except params_checks.Invalid as exc:
            raise exc.under("output_config") from None
    try:
        params_checks.optional_str(value, "effort")
    except params_checks.Invalid as exc:
        raise exc.under("output_config") from None
    try:
        _format(value.get("format"), strict)
    except params_checks.Invalid as exc:
        raise exc.under("output_config", "format") from None


def check_output_format(value: Any, strict: bool) -> None:
    try:
        _format(value, strict)
    except params_checks.Invalid as exc:
        raise exc.under("output_format") from None


def check_one_format(params: dict[str, Any]) -> None:
    """`output_format` is the deprecated spelling of `output_config.format`: not both at once."""
    config = params.get("output_config")
    if (
        params.get("output_format") is not None
        and isinstance(config, dict)
        and config.get("format") is not None
    ):
        raise params_checks.Invalid(
            "Both output_format and output_config.format were provided; use only output_config.format "
            "(output_format is deprecated)",
            "output_format",
        )


def _format(value: Any, strict: bool) -> None:
    """One `{type: json_schema, schema}` (or null); errors located relative to it."""
    if value is None:
        return
    if type(value) is not dict:
        raise params_checks.Invalid(params_checks.NOT_DICT)
    if value.get("type") != "json_schema":
        if "type" not in value:
            raise params_checks.Invalid(params_checks.FIELD_REQUIRED, "type")
        raise params_checks.Invalid(params_checks.one_of(("json_schema",)), "type")
    params_checks.require_dict(value, "schema")
    if strict:
        params_checks.no_extra(value, _FORMAT_KEYS)
