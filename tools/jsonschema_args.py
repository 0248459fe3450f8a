"""Checking the arguments of a tool whose JSON schema was given (an MCP server's) rather than
derived: the same ValidationError, and so the same one-sentence message to the model, as a
derived tool's arguments get."""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

if TYPE_CHECKING:
    from tools.base import Tool


@functools.lru_cache(maxsize=512)
def _validator(schema_json: str) -> Draft202012Validator | None:
    schema = json.loads(schema_json)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError:
        return None  # a server's broken schema: the server itself judges the arguments
    return Draft202012Validator(schema)


def without_optional_nulls(schema: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    """Models send null for an optional argument they mean to leave out; servers often refuse
    null where the schema says string. Drop nulls for arguments that are not required."""
    required = set(schema.get("required") or [])
    return {k: v for k, v in args.items() if v is not None or k in required}


def check_json_schema(t: Tool, args: dict[str, Any]) -> BaseModel:
    from tools.base import AnyArguments

    assert t.parameters is not None
    args = without_optional_nulls(t.parameters, args)
    validator = _validator(json.dumps(t.parameters, sort_keys=True))
    errors = sorted(validator.iter_errors(args), key=lambda e: list(e.path)) if validator else []
    if errors:
        details = [
            InitErrorDetails(
                type=PydanticCustomError("schema", "{message}", {"message": e.message}),
                loc=tuple(str(p) for p in e.path),
                input=e.instance,
            )
            for e in errors[:5]
        ]
        raise ValidationError.from_exception_data(t.name, details)
    return AnyArguments.model_validate(args)
