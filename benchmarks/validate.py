"""A small JSON Schema (draft 2020-12) validator for the keywords ``schema.json`` uses, no dependency.

Supported: type, enum, const, properties, required, additionalProperties (bool or schema), items,
minimum, anyOf, local ``$ref`` to ``#/$defs/...``; annotations (title, description, $schema, $id,
$comment) are ignored. Any other keyword in a schema raises ``SchemaError``, so the schema can never
use something this validator would silently skip.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).with_name("schema.json")
Schema = dict[str, Any]

_ANNOTATIONS = {"$schema", "$id", "$defs", "title", "description", "$comment"}
_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    # 2020-12: a number with zero fractional part is an integer.
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
}


class SchemaError(ValueError):
    """The schema itself uses something this validator does not implement."""


def load_schema(path: Path = SCHEMA_PATH) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def validate(instance: Any, schema: dict[str, Any] | None = None) -> list[str]:
    """All violations of ``schema`` (default: ``benchmarks/schema.json``) as ``"$.path: message"``; [] if valid."""
    root = load_schema() if schema is None else schema
    errors: list[str] = []
    _check(instance, root, root, "$", errors)
    return errors


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    if not ref.startswith("#/"):
        raise SchemaError(f"only local $ref is supported, got {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _is_number(value: Any) -> bool:
    return _TYPES["number"](value)


def _check(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str, errors: list[str]) -> None:
    for key in schema:
        if key not in _KEYWORDS and key not in _ANNOTATIONS:
            raise SchemaError(f"unsupported schema keyword {key!r} at {path}")
    for key, arg in schema.items():
        if key in _KEYWORDS:
            _KEYWORDS[key](value, arg, schema, root, path, errors)


def _type(value: Any, arg: Any, schema: Schema, root: Schema, path: str, errors: list[str]) -> None:
    names = [arg] if isinstance(arg, str) else list(arg)
    if not any(_TYPES[n](value) for n in names):
        errors.append(f"{path}: expected {' or '.join(names)}, got {type(value).__name__}")


def _enum(value: Any, arg: Any, schema: Schema, root: Schema, path: str, errors: list[str]) -> None:
    if not any(_equal(value, option) for option in arg):
        errors.append(f"{path}: {value!r} is not one of {arg!r}")


def _const(value: Any, arg: Any, schema: Schema, root: Schema, path: str, errors: list[str]) -> None:
    if not _equal(value, arg):
        errors.append(f"{path}: expected {arg!r}, got {value!r}")


def _equal(a: Any, b: Any) -> bool:
    # JSON equality: true != 1 although Python says True == 1.
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b


def _properties(value: Any, arg: Any, schema: Schema, root: Schema, path: str, errors: list[str]) -> None:
    if isinstance(value, dict):
        for name, sub in arg.items():
            if name in value:
                _check(value[name], sub, root, f"{path}.{name}", errors)


def _required(value: Any, arg: Any, schema: Schema, root: Schema, path: str, errors: list[str]) -> None:
    if isinstance(value, dict):
        for name in arg:
            if name not in value:
                errors.append(f"{path}: missing required property {name!r}")


def _additional(value: Any, arg: Any, schema: Schema, root: Schema, path: str, errors: list[str]) -> None:
    if not isinstance(value, dict):
        return
    extra = [k for k in value if k not in schema.get("properties", {})]
    for name in extra:
        if arg is False:
            errors.append(f"{path}: unexpected property {name!r}")
        elif isinstance(arg, dict):
            _check(value[name], arg, root, f"{path}.{name}", errors)


def _items(value: Any, arg: Any, schema: Schema, root: Schema, path: str, errors: list[str]) -> None:
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check(item, arg, root, f"{path}[{i}]", errors)


def _minimum(value: Any, arg: Any, schema: Schema, root: Schema, path: str, errors: list[str]) -> None:
    if _is_number(value) and value < arg:
        errors.append(f"{path}: {value} is below the minimum {arg}")


def _any_of(value: Any, arg: Any, schema: Schema, root: Schema, path: str, errors: list[str]) -> None:
    branches: list[list[str]] = []
    for sub in arg:
        found: list[str] = []
        _check(value, sub, root, path, found)
        if not found:
            return
        branches.append(found)
    errors.append(f"{path}: matches none of anyOf ({'; '.join(b[0] for b in branches if b)})")


def _ref(value: Any, arg: Any, schema: Schema, root: Schema, path: str, errors: list[str]) -> None:
    _check(value, _resolve(arg, root), root, path, errors)


_KEYWORDS = {
    "type": _type, "enum": _enum, "const": _const, "properties": _properties, "required": _required,
    "additionalProperties": _additional, "items": _items, "minimum": _minimum, "anyOf": _any_of, "$ref": _ref,
}
