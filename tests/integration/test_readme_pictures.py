"""scripts/readme_pictures.py against the whole HTTP API served in process (the real model):
it writes both pictures, each a WEBP of its layout's size under 150 kB, showing the service's
answers; the README shows each picture the script makes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scripts import readme_pictures as pictures
from tests.integration.api_server import InProcessServer

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "readme_pictures.py"
WIDE = 2 * pictures.PANEL + 3 * pictures.GAP
ROW = pictures.PANEL + pictures.LABEL_HEIGHT + pictures.GAP
SIZES = {
    "product-canvas.webp": (WIDE, pictures.GAP + ROW),
    "portrait-edges.webp": (WIDE, pictures.GAP + 2 * ROW),
}


def panel(picture: Image.Image, row: int, column: int) -> np.ndarray:
    """One panel's pixels, without its label."""
    x = pictures.GAP + column * (pictures.PANEL + pictures.GAP)
    y = pictures.GAP + row * ROW + pictures.LABEL_HEIGHT
    box = (x, y, x + pictures.PANEL, y + pictures.PANEL)
    return np.asarray(picture.convert("RGB").crop(box), dtype=np.int16)


@pytest.mark.slow
def test_the_script_makes_both_pictures_with_the_service(
    server: InProcessServer, tmp_path: Path
) -> None:
    command = [sys.executable, str(SCRIPT), "--url", server.url, "--out", str(tmp_path)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(SIZES)
    opened = {}
    for name, size in SIZES.items():
        path = tmp_path / name
        assert str(path) in run.stdout
        assert path.stat().st_size < 150_000
        opened[name] = Image.open(path)
        assert (opened[name].format, opened[name].size) == ("WEBP", size)
    product = panel(opened["product-canvas.webp"], 0, 1)
    assert (product[:40, :40] >= 245).all()  # the product preset's white canvas, corner to edge
    portrait = opened["portrait-edges.webp"]
    keep, decontaminated = panel(portrait, 1, 0), panel(portrait, 1, 1)
    assert np.abs(keep - decontaminated).sum(axis=2).max() > 60  # the edges' colours differ


def test_the_readme_shows_every_picture_the_script_makes() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in SIZES:
        assert f"](docs/pictures/{name})" in readme
        assert (ROOT / "docs" / "pictures" / name).is_file()
