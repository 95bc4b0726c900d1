"""The hand-written JSON Schema validator and the schema file itself."""

from __future__ import annotations

import copy

import pytest
from stylize_video.benchmarks.validate import SchemaError, load_schema, validate

SMALL = {
    "type": "object", "required": ["a"], "additionalProperties": False,
    "properties": {"a": {"type": "integer", "minimum": 1}, "b": {"enum": ["x", None]},
                   "c": {"type": "array", "items": {"$ref": "#/$defs/n"}},
                   "d": {"anyOf": [{"type": "string"}, {"type": "null"}]}, "e": {"const": True}},
    "$defs": {"n": {"type": ["number", "null"]}},
}


def test_valid_document_passes() -> None:
    assert validate({"a": 1, "b": None, "c": [1.5, None, 2], "d": "s", "e": True}, SMALL) == []


@pytest.mark.parametrize(("doc", "fragment"), [
    ({}, "missing required property 'a'"),
    ({"a": 0}, "below the minimum"),
    ({"a": 1.5}, "expected integer"),
    ({"a": True}, "expected integer"),  # JSON booleans are not numbers
    ({"a": 1, "b": "y"}, "is not one of"),
    ({"a": 1, "c": ["1"]}, "$.c[0]: expected number or null"),
    ({"a": 1, "d": 3}, "matches none of anyOf"),
    ({"a": 1, "e": 1}, "expected True"),
    ({"a": 1, "zzz": 1}, "unexpected property 'zzz'"),
])
def test_violations_are_reported(doc: dict, fragment: str) -> None:
    errors = validate(doc, SMALL)
    assert errors and any(fragment in e for e in errors), errors


def test_unsupported_keyword_is_refused() -> None:
    with pytest.raises(SchemaError, match="pattern"):
        validate("x", {"type": "string", "pattern": "^x$"})


def test_schema_file_is_valid_2020_12() -> None:
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    validate({}, schema)  # walks the root keywords; raises SchemaError on anything unsupported
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema not installed: cross-check skipped")
    jsonschema.Draft202012Validator.check_schema(schema)


def test_record_schema_rejects_a_broken_record(sample_record: dict) -> None:
    assert validate(sample_record) == []
    broken = copy.deepcopy(sample_record)
    broken["model_results"][0]["fps"] = -1.0
    del broken["machine"]["gpu"]
    errors = validate(broken)
    assert any("model_results[0].fps" in e for e in errors)
    assert any("missing required property 'gpu'" in e for e in errors)
