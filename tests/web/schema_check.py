"""A small JSON Schema (2020-12 subset) checker for the OpenAPI document's schemas.

It knows the keywords ``core/web/openapi.py`` uses (type, properties, required, items,
enum, allOf, $ref, minimum, maximum, maxLength, description, default) and refuses any
other keyword, so a schema it cannot check fails loudly instead of passing unchecked.
"""

from __future__ import annotations

from typing import Any

KNOWN = {"type", "properties", "required", "items", "enum", "allOf", "$ref", "minimum", "maximum",
         "maxLength", "description", "default"}
TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def resolve(doc: dict[str, Any], ref: str) -> dict[str, Any]:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def errors(doc: dict[str, Any], schema: dict[str, Any], value: Any, where: str = "$") -> list[str]:
    out: list[str] = []
    unknown = set(schema) - KNOWN
    if unknown:
        return [f"{where}: schema keywords this checker does not know: {sorted(unknown)}"]
    if "$ref" in schema:
        out += errors(doc, resolve(doc, schema["$ref"]), value, where)
    for sub in schema.get("allOf", []):
        out += errors(doc, sub, value, where)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(TYPES[t](value) for t in types):
            return out + [f"{where}: {value!r} is not of type {types}"]
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{where}: {value!r} not one of {schema['enum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                out.append(f"{where}: required key {key!r} missing")
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                out += errors(doc, sub, value[key], f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            out += errors(doc, schema["items"], item, f"{where}[{i}]")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(f"{where}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            out.append(f"{where}: {value} > {schema['maximum']}")
    if isinstance(value, str) and "maxLength" in schema and len(value) > schema["maxLength"]:
        out.append(f"{where}: longer than {schema['maxLength']}")
    return out


def response_schema(doc: dict[str, Any], path: str, method: str = "get", status: str = "200") -> dict[str, Any]:
    response = doc["paths"][path][method]["responses"][status]
    if "$ref" in response:
        response = resolve(doc, response["$ref"])
    return response["content"]["application/json"]["schema"]


def check(doc: dict[str, Any], path: str, value: Any, method: str = "get", status: str = "200") -> None:
    found = errors(doc, response_schema(doc, path, method, status), value)
    assert not found, f"{method.upper()} {path} {status} does not match the OpenAPI document:\n" + "\n".join(found[:20])
