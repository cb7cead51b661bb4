"""Values for the simulator that satisfy a JSON schema: tool inputs (a tool's `input_schema`)
and structured outputs (`output_config.format`'s schema).

Handles `type` (also lists), `properties`/`required`, `items`/`prefixItems`, `enum`,
`const`, `anyOf`/`oneOf`, `allOf`, local `$ref`s, numeric bounds and `multipleOf`,
`minLength`/`maxLength`, `minItems`/`maxItems` and common string `format`s.
`pattern` and `uniqueItems` are not enforced.
"""

from __future__ import annotations

from typing import Any

from batchd.backends.simulator import text as sim_text

_MAX_DEPTH = 6  # recursive `$ref`s stop growing optional parts past this
_CANNED_INPUTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("bash_", {"command": "ls -la"}),
    ("text_editor_", {"command": "view", "path": "/repo/README.md"}),
    ("computer_", {"action": "screenshot"}),
    ("memory_", {"command": "view", "path": "/memories"}),
)


def tool_input(tool: dict[str, Any], rng: sim_text.Rng, words: list[str]) -> dict[str, Any]:
    """An input for `tool` that satisfies its `input_schema` (or a canned one)."""
    schema = tool.get("input_schema")
    if not isinstance(schema, dict):
        kind = str(tool.get("type") or "")
        for prefix, canned in _CANNED_INPUTS:
            if kind.startswith(prefix):
                return dict(canned)
        return {}
    value = _value(schema, schema, rng, words, "input", 0)
    return value if isinstance(value, dict) else {}


def value_for(schema: dict[str, Any], rng: sim_text.Rng, words: list[str]) -> Any:
    """A value of any type (an object, as a rule) that satisfies `schema`."""
    return _value(schema, schema, rng, words, "output", 0)


def _value(
    schema: Any,
    root: dict[str, Any],
    rng: sim_text.Rng,
    words: list[str],
    name: str,
    depth: int,
) -> Any:
    if not isinstance(schema, dict):
        return _string({}, rng, words, name)
    schema = _resolve(schema, root, depth)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][rng.below(len(schema["enum"]))]
    for key in ("anyOf", "oneOf"):
        options = [o for o in schema.get(key) or [] if isinstance(o, dict)]
        usable = [o for o in options if o.get("type") != "null"] or options
        if usable:
            return _value(usable[rng.below(len(usable))], root, rng, words, name, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"] or kind
        kind = kinds[rng.below(len(kinds))] if kinds else None
    if kind is None and "properties" in schema:
        kind = "object"
    elif kind is None and "items" in schema:
        kind = "array"
    if kind == "object":
        return _object(schema, root, rng, words, depth)
    if kind == "array":
        return _array(schema, root, rng, words, name, depth)
    if kind in ("integer", "number"):
        return _number(schema, rng, integer=kind == "integer")
    if kind == "boolean":
        return rng.chance(50)
    if kind == "null":
        return None
    return _string(schema, rng, words, name)


def _resolve(schema: dict[str, Any], root: dict[str, Any], depth: int) -> dict[str, Any]:
    """Follow local `$ref`s and merge `allOf` parts into one schema."""
    for _ in range(_MAX_DEPTH):
        ref = schema.get("$ref")
        if not (isinstance(ref, str) and ref.startswith("#")):
            break
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**rest, **_pointer(root, ref[1:])}
    parts = schema.get("allOf")
    if isinstance(parts, list) and depth < _MAX_DEPTH:
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for part in parts:
            if isinstance(part, dict):
                part = _resolve(part, root, depth + 1)
                props = {**merged.get("properties", {}), **part.get("properties", {})}
                required = [*merged.get("required", []), *part.get("required", [])]
                merged = {**part, **merged, "properties": props, "required": required}
        schema = merged
    return schema


def _pointer(root: dict[str, Any], pointer: str) -> dict[str, Any]:
    target: Any = root
    for part in filter(None, pointer.split("/")):
        key = part.replace("~1", "/").replace("~0", "~")
        target = target.get(key, {}) if isinstance(target, dict) else {}
    return target if isinstance(target, dict) else {}


def _object(
    schema: dict[str, Any],
    root: dict[str, Any],
    rng: sim_text.Rng,
    words: list[str],
    depth: int,
) -> dict[str, Any]:
    props = schema.get("properties")
    props = props if isinstance(props, dict) else {}
    required = [str(key) for key in schema.get("required") or []]
    result: dict[str, Any] = {}
    for key, sub in props.items():
        if key in required or (depth < 3 and rng.chance(50)):
            result[key] = _value(sub, root, rng, words, key, depth + 1)
    for key in required:
        if key not in result:  # required but not described: any string will do
            result[key] = _string({}, rng, words, key)
    return result


def _array(
    schema: dict[str, Any],
    root: dict[str, Any],
    rng: sim_text.Rng,
    words: list[str],
    name: str,
    depth: int,
) -> list[Any]:
    low = int(schema.get("minItems", 0 if depth >= _MAX_DEPTH else 1))
    high = int(schema.get("maxItems", max(low, 3)))
    prefix = schema.get("prefixItems")
    prefix = prefix if isinstance(prefix, list) else []
    count = max(low, min(high, rng.between(low, low + 2)))
    items = schema.get("items", {})
    values = []
    for i in range(count):
        sub = prefix[i] if i < len(prefix) else items
        values.append(_value(sub, root, rng, words, name, depth + 1))
    return values


def _number(schema: dict[str, Any], rng: sim_text.Rng, *, integer: bool) -> int | float:
    low, high = schema.get("minimum"), schema.get("maximum")
    ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    step = 1 if integer else 0.01
    if isinstance(ex_low, int | float) and not isinstance(ex_low, bool):
        low = max(low, ex_low + step) if isinstance(low, int | float) else ex_low + step
    if isinstance(ex_high, int | float) and not isinstance(ex_high, bool):
        high = min(high, ex_high - step) if isinstance(high, int | float) else ex_high - step
    if low is None:
        low = 0 if high is None or high >= 0 else high - 100
    if high is None:
        high = low + 100
    if integer:
        low_i, high_i = -(-low // 1), high // 1  # ceil and floor keep bounds on floats
        value = rng.between(int(low_i), int(max(low_i, high_i)))
        multiple = schema.get("multipleOf")
        if isinstance(multiple, int) and multiple > 0 and value % multiple:
            up = value + multiple - value % multiple
            value = up if up <= high_i else value - value % multiple
        return value
    if high <= low:
        return low
    return min(max(round(low + (high - low) * rng.below(10_001) / 10_000, 2), low), high)


def _string(schema: dict[str, Any], rng: sim_text.Rng, words: list[str], name: str) -> str:
    fmt = schema.get("format", "")
    key = name.lower()
    pool = words or ["example"]
    n = rng.between(1, 99)
    if fmt == "date-time":
        text = f"2025-{n % 12 + 1:02d}-{n % 28 + 1:02d}T{n % 24:02d}:00:00Z"
    elif fmt == "date" or key.endswith("date"):
        text = f"2025-{n % 12 + 1:02d}-{n % 28 + 1:02d}"
    elif fmt == "time":
        text = f"{n % 24:02d}:{n % 60:02d}:00"
    elif fmt == "email" or "email" in key:
        text = f"user{n}@example.com"
    elif fmt in ("uri", "url", "iri") or key in ("url", "uri", "link", "href"):
        text = f"https://example.com/item/{n}"
    elif fmt == "uuid":
        text = f"{n:08x}-0000-4000-8000-{n:012x}"
    elif fmt == "ipv4":
        text = f"192.0.2.{n}"
    elif fmt == "ipv6":
        text = f"2001:db8::{n:x}"
    elif fmt == "hostname":
        text = f"host{n}.example.com"
    elif fmt == "duration":
        text = f"PT{n}M"
    else:
        start = rng.below(len(pool))
        text = " ".join(pool[start : start + rng.between(1, 3)])
    low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
    while len(text) < low:
        text += " " + rng.choice(pool)
    return text[: int(high)] if isinstance(high, int) else text
