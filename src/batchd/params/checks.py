"""What the params validators share: the located error and the small type checks.

Validators raise `Invalid` with a location relative to the value they check. Each
caller that descends into a field or a list index prepends its part while the error
unwinds, so a request that validates never builds a path string. `params.prepare`
renders the final error as `InvalidParams("messages.0.content.1.type: Input tag ...")`.

Messages follow the wording of the real API, which validates with pydantic.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

FIELD_REQUIRED = "Field required"
EXTRA = "Extra inputs are not permitted"
NO_TAG = "Unable to extract tag using discriminator 'type'"
NOT_STR = "Input should be a valid string"
NOT_INT = "Input should be a valid integer"
NOT_NUMBER = "Input should be a valid number"
NOT_BOOL = "Input should be a valid boolean"
NOT_LIST = "Input should be a valid list"
NOT_DICT = "Input should be a valid dictionary"
# Every backend serialises params with orjson, which refuses more than 255 levels, and the
# validators, the simulator and the OpenAI translation recurse: a bound well below both.
MAX_DEPTH = 128  # levels of objects and arrays in one request's params, params itself the first
TOO_DEEP = f"Input is nested too deeply: params may nest at most {MAX_DEPTH} levels of objects and arrays"


class Invalid(Exception):
    """A validation failure at `loc`, relative to the value being checked."""

    def __init__(self, message: str, *loc: str | int) -> None:
        super().__init__(message)
        self.message = message
        self.loc: list[str | int] = list(loc)

    def under(self, *parts: str | int) -> Invalid:
        """Prepend `parts` to the location; returns self for `raise exc.under(i)`."""
        self.loc[0:0] = parts
        return self

    def render(self) -> str:
        if not self.loc:
            return self.message
        return f"{'.'.join(map(str, self.loc))}: {self.message}"


def nests_deeper(value: Any, levels: int) -> bool:
    """Whether `value` nests objects and arrays more than `levels` deep, itself the first level
    when it is one. Level by level, not recursive: depth must not cost stack."""
    if type(value) not in _CONTAINERS:
        return False
    frontier = [value]
    for _ in range(levels):
        deeper: list[Any] = []
        for node in frontier:
            for child in node.values() if type(node) is dict else node:
                if type(child) in _CONTAINERS:
                    deeper.append(child)
        if not deeper:
            return False
        frontier = deeper
    return True


_CONTAINERS = (dict, list)


def quoted(values: Iterable[str]) -> str:
    """`'a', 'b', 'c'`: the list pydantic prints after "expected tags:"."""
    return ", ".join(f"'{v}'" for v in values)


def one_of(values: Collection[str]) -> str:
    """`Input should be 'a', 'b' or 'c'`: pydantic's message for a failed Literal."""
    items = [f"'{v}'" for v in values]
    if len(items) == 1:
        return f"Input should be {items[0]}"
    return f"Input should be {', '.join(items[:-1])} or {items[-1]}"


def bad_tag(obj: dict[str, Any], expected: str) -> Invalid:
    """The error for a tagged union whose `type` is missing or not in `expected`."""
    if "type" not in obj:
        return Invalid(NO_TAG)
    tag = obj["type"]
    return Invalid(
        f"Input tag '{tag}' found using 'type' does not match any of the expected tags: {expected}",
        "type",
    )


def require_str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if type(value) is not str:
        raise Invalid(FIELD_REQUIRED if key not in obj else NOT_STR, key)
    return value


def require_dict(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    if type(value) is not dict:
        raise Invalid(FIELD_REQUIRED if key not in obj else NOT_DICT, key)
    return value


def optional_str(obj: dict[str, Any], key: str) -> None:
    value = obj.get(key)
    if value is not None and type(value) is not str:
        raise Invalid(NOT_STR, key)


def optional_bool(obj: dict[str, Any], key: str) -> None:
    value = obj.get(key)
    if value is not None and type(value) is not bool:
        raise Invalid(NOT_BOOL, key)


def optional_dict(obj: dict[str, Any], key: str) -> None:
    value = obj.get(key)
    if value is not None and type(value) is not dict:
        raise Invalid(NOT_DICT, key)


def optional_list(obj: dict[str, Any], key: str) -> None:
    value = obj.get(key)
    if value is not None and type(value) is not list:
        raise Invalid(NOT_LIST, key)


def optional_literal(obj: dict[str, Any], key: str, allowed: Collection[str]) -> None:
    value = obj.get(key)
    if value is not None and (type(value) is not str or value not in allowed):
        raise Invalid(one_of(allowed), key)


def str_list(value: Any) -> None:
    """A list of strings (stop_sequences, allowed_domains, ...)."""
    if type(value) is not list:
        raise Invalid(NOT_LIST)
    for i, item in enumerate(value):
        if type(item) is not str:
            raise Invalid(NOT_STR, i)


def no_extra(obj: dict[str, Any], allowed: Collection[str]) -> None:
    for key in obj:
        if key not in allowed:
            raise Invalid(EXTRA, key)
