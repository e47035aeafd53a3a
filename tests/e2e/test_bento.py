"""`bentoml build` packages a Bento that serves a correct cut-out on its own."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests import images
from tests.e2e.server import ROOT, BentoServer

pytestmark = pytest.mark.slow
BENTOML = str(Path(sys.executable).with_name("bentoml"))


@pytest.fixture(scope="module")
def bento_tag() -> Iterator[str]:
    built = subprocess.run(
        [BENTOML, "build", "-o", "tag"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={
            "BENTOML_DO_NOT_TRACK": "true",
            "PATH": str(Path(sys.executable).parent),
            "HOME": str(Path.home()),
        },
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    tag = built.stdout.strip().rsplit("__tag__:", 1)[-1].strip()
    yield tag
    subprocess.run([BENTOML, "delete", "-y", tag], capture_output=True, timeout=60)


def test_bento_packs_model_code_pins_and_dockerfile(bento_tag: str, tmp_path: Path) -> None:
    archive = tmp_path / "bg_remover.bento"
    subprocess.run(
        [BENTOML, "export", bento_tag, str(archive)], capture_output=True, timeout=120, check=True
    )
    with tarfile.open(archive) as bento:
        names = bento.getnames()
        pins = bento.extractfile("./env/python/requirements.txt").read().decode()
    assert any(re.fullmatch(r"\./models/u2netp/\w+/model\.onnx", name) for name in names)
    assert {"./src/service.py", "./src/optimizer/pipeline.py", "./env/docker/Dockerfile"} <= set(
        names
    )
    assert not [name for name in names if "/tests/" in name or ".venv" in name]
    # requirements-serve.txt is the one list of pins; rembg and onnx only import models.
    assert pin_lines(pins) == pin_lines((ROOT / "requirements-serve.txt").read_text())
    assert "onnxruntime==1.32.0" in pin_lines(pins)
    assert not {line.partition("==")[0] for line in pin_lines(pins)} & {"rembg", "onnx"}


def pin_lines(text: str) -> set[str]:
    return {line for line in text.splitlines() if line.strip() and not line.startswith("#")}


def test_built_bento_serves_a_cutout(bento_tag: str, tmp_path: Path) -> None:
    """Served from an empty folder: nothing may come from this checkout."""
    with BentoServer(tmp_path, target=bento_tag, cwd=tmp_path) as server:
        response = httpx.post(
            f"{server.url}/remove-background",
            files={"file": ("cat.jpg", images.photo("chelsea", "JPEG"))},
            timeout=120,
        )
    assert response.status_code == 200, response.text
    result = Image.open(io.BytesIO(response.content))
    alpha = np.asarray(result.getchannel("A"))
    assert result.size == (451, 300)
    assert alpha.min() < 10 and alpha.max() > 245
