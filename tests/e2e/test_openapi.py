"""The OpenAPI document the server publishes tells the truth: each route documents the error
statuses it can answer with and its request body, and schemathesis, generating requests from
the document, meets neither a server error nor an undocumented status or content type."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import BentoServer

pytestmark = pytest.mark.slow

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance"
EXAMPLES_PER_OPERATION = 20  # a few hundred requests in all, about a minute
EXPECTED_STATUSES = {
    ("post", "/remove-background"): {"200", "400", "401", "408", "413", "415", "429", "503"},
    ("post", "/remove-background-preview"): {"200", "400", "401", "413", "415", "429", "503"},
    ("post", "/remove-background-base64"): {"200", "400", "401", "413", "415", "429", "503"},
    ("post", "/remove-background-batch"): {"200", "400", "401", "413", "429", "503"},
    ("post", "/read-file"): {"200", "400", "401", "403", "404", "413", "415", "429", "503"},
    # remove.bg's statuses: 403 for a key, 400 for a body too large or a file of another type
    ("post", "/v1.0/removebg"): {"200", "400", "403", "429", "503"},
    ("post", "/v1.0/improve"): {"200", "400", "403", "429", "503"},
    ("get", "/v1.0/account"): {"200", "403"},
    ("get", "/presets"): {"200", "401"},
    ("get", "/models"): {"200", "401", "503"},
    ("get", "/health"): {"200", "503"},
}


@pytest.fixture(scope="module")
def spec(client: httpx.Client) -> dict[str, Any]:
    return client.get("/docs.json").json()


@pytest.mark.parametrize(("method", "path"), sorted(EXPECTED_STATUSES))
def test_each_route_documents_its_statuses(spec: dict[str, Any], method: str, path: str) -> None:
    responses = spec["paths"][path][method]["responses"]
    assert EXPECTED_STATUSES[(method, path)] <= responses.keys()
    for status, response in responses.items():
        if status.startswith(("4", "5")) and path != "/health":
            schema = response["content"]["application/json"]["schema"]
            assert schema["$ref"].rsplit("/", 1)[-1] in ("ErrorBody", "RemoveBgErrors")


@pytest.mark.parametrize(
    ("path", "media_type", "fields"),
    [
        ("/remove-background", "multipart/form-data", {"file", "format", "quality", "preset"}),
        ("/remove-background-batch", "multipart/form-data", {"files", "max_width", "crop"}),
        ("/remove-background-base64", "application/json", {"image", "bg_color", "only_mask"}),
        ("/read-file", "application/json", {"path"}),
        ("/v1.0/removebg", "application/json", {"image_file_b64", "size", "channels"}),
    ],
)
def test_request_bodies_are_described(
    spec: dict[str, Any], path: str, media_type: str, fields: set[str]
) -> None:
    body = spec["paths"][path]["post"]["requestBody"]["content"][media_type]["schema"]
    assert fields <= body["properties"].keys()


def test_schemathesis_finds_nothing(server: BentoServer, tmp_path: Path) -> None:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{server.url}/docs.json",
        "--checks",
        CHECKS,
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--seed",
        "20261129",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert generated and generated[1] == generated[2] and int(generated[1]) > 100, result.stdout[
        -2000:
    ]
