"""Shared fixtures: where the real u2netp model files are (tests skip when they are absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")

MODEL_NAME = "u2netp"


@pytest.fixture(scope="session")
def stored_model_path() -> Path:
    """u2netp's ONNX file in BentoML's model store (batch axis made dynamic by import_model.py)."""
    import bentoml

    try:
        model = bentoml.models.get(MODEL_NAME)
    except bentoml.exceptions.NotFound:
        pytest.skip(f"model '{MODEL_NAME}' is not in BentoML's store: run import_model.py first")
    path = Path(model.path_of("model.onnx"))
    if not path.is_file():
        pytest.skip(f"the stored model has no model.onnx at {path}")
    return path


@pytest.fixture(scope="session")
def original_model_path() -> Path:
    """rembg's original u2netp.onnx (batch axis fixed at 1) from the rembg cache."""
    path = Path(os.environ.get("U2NET_HOME", Path.home() / ".u2net")) / f"{MODEL_NAME}.onnx"
    if not path.is_file():
        pytest.skip(f"rembg's original model is not at {path}")
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """On CI (CI=true) a skipped test is a failure: every tool the tests need must be there."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped on CI, which must run everything: {report.longrepr}"
