"""Checking an answer against remove.bg's published OpenAPI 1.0.0 document.

`conforms(document, path, method, response)` fails the test unless the answer's status is one
the document lists for that operation, its body matches the documented schema of that status
(an error's `code` one of the documented codes, or `invalid_<parameter>` for a parameter the
document lists), and each header the document describes for that status has the documented
type (X-Credits-Charged a number, X-Width and the rest integers, X-Type from its enum).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import jsonschema

JSON = "application/json"
# Parameters remove.bg's API page documents that its OpenAPI 1.0.0 predates.
LATER_PARAMETERS = ("shadow_type", "shadow_opacity", "shadow_method")
ERROR_CONTENT = "*/*"


def resolved(node: Any, document: dict[str, Any]) -> Any:
    """`node` with every `$ref` into the document replaced by what it points to."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = document
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return resolved(target, document)
        return {key: resolved(value, document) for key, value in node.items()}
    if isinstance(node, list):
        return [resolved(item, document) for item in node]
    return node


def operation(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    relative = path.removeprefix("/v1.0")
    return resolved(document["paths"][relative][method.lower()], document)


def documented_error_codes(document: dict[str, Any]) -> set[str]:
    """The 400 codes remove.bg lists, and invalid_<parameter> for each parameter it takes."""
    removebg = operation(document, "/removebg", "post")
    listed = set(removebg["responses"]["400"]["content"][ERROR_CONTENT]["examples"])
    parameters: set[str] = set(LATER_PARAMETERS)
    for body in removebg["requestBody"]["content"].values():
        parameters |= set(body["schema"]["properties"])
    return listed | {f"invalid_{name}" for name in parameters}


def conforms(document: dict[str, Any], method: str, response: httpx.Response) -> None:
    path = response.request.url.path
    described = operation(document, path, method)["responses"]
    status = str(response.status_code)
    assert status in described, f"{method} {path}: {status} is not documented ({list(described)})"
    documented = described[status]
    if response.status_code >= 400:
        _error_conforms(document, documented, response)
    else:
        _body_conforms(documented, response)
    _headers_conform(documented, response)


def _error_conforms(
    document: dict[str, Any], documented: dict[str, Any], response: httpx.Response
) -> None:
    body = response.json()
    jsonschema.validate(body, documented["content"][ERROR_CONTENT]["schema"])
    assert body["errors"], "an error names at least one error"
    for error in body["errors"]:
        assert set(error) == {"title", "code", "detail"}, error
        assert all(isinstance(value, str) and value for value in error.values()), error
        if response.status_code == 400:
            assert error["code"] in documented_error_codes(document), error


def _body_conforms(documented: dict[str, Any], response: httpx.Response) -> None:
    media_type = response.headers["content-type"].split(";")[0].strip()
    content = documented["content"]
    if media_type == JSON:
        body = response.json()
        jsonschema.validate(body, content.get(JSON, content.get(ERROR_CONTENT, {}))["schema"])
        encoded = body.get("data", {}).get("result_b64")
        if encoded is not None:
            assert base64.b64decode(encoded, validate=True)
        return
    assert "image/*" in content or ERROR_CONTENT in content, list(content)
    assert media_type.startswith("image/"), media_type


def _headers_conform(documented: dict[str, Any], response: httpx.Response) -> None:
    for name, header in documented.get("headers", {}).items():
        value = response.headers.get(name)
        if value is None:
            continue
        schema = header["schema"]
        jsonschema.validate(_typed(value, schema["type"]), schema)


def _typed(value: str, kind: str) -> Any:
    """A header's text as the JSON value its schema describes (an int is not a float's text)."""
    if kind == "integer":
        assert value.lstrip("-").isdigit(), value
        return int(value)
    if kind == "number":
        return json.loads(value)
    return value
