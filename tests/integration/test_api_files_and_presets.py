"""`/read-file` and `/presets` through the whole HTTP API in process."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import httpx
import pytest

from optimizer import PRESETS
from tests import images
from tests.answers import assert_error

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def uploads(upload_dir: Path) -> Path:
    (upload_dir / "photos").mkdir(exist_ok=True)
    (upload_dir / "photos" / "cat.png").write_bytes(images.photo("chelsea", "PNG"))
    (upload_dir / "notes.txt").write_bytes(images.text_file())
    sibling = upload_dir.parent / (upload_dir.name + "-old")
    sibling.mkdir(exist_ok=True)
    (sibling / "secret.png").write_bytes(images.photo("coffee", "PNG"))
    outside = upload_dir.parent / "outside.png"
    outside.write_bytes(images.photo("rocket", "PNG"))
    link = upload_dir / "link.png"
    if not link.exists():
        os.symlink(outside, link)
    return upload_dir


def read(client: httpx.Client, path: object) -> httpx.Response:
    return client.post("/read-file", json={"path": path})


class TestReadFile:
    def test_reads_an_image_inside(self, client: httpx.Client, uploads: Path) -> None:
        response = read(client, "photos/cat.png")
        assert response.status_code == 200, response.text
        body = response.json()
        expected = (uploads / "photos" / "cat.png").read_bytes()
        assert body == {
            "success": True,
            "filename": "cat.png",
            "mimetype": "image/png",
            "size": len(expected),
            "image": base64.b64encode(expected).decode(),
        }

    def test_absolute_path_inside_is_accepted(self, client: httpx.Client, uploads: Path) -> None:
        response = read(client, str(uploads / "photos" / "cat.png"))
        assert response.status_code == 200, response.text
        expected = (uploads / "photos" / "cat.png").read_bytes()
        assert base64.b64decode(response.json()["image"]) == expected

    @pytest.mark.parametrize(
        "path",
        [
            "../outside.png",
            "photos/../../outside.png",
            "link.png",
            "/etc/passwd",
            "..%2Foutside.png",
            "%2e%2e/outside.png",
            "..\\outside.png",
        ],
    )
    def test_outside_is_403(self, client: httpx.Client, uploads: Path, path: str) -> None:
        response = read(client, path)
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "forbidden"

    def test_sibling_folder_with_same_prefix_is_403(
        self, client: httpx.Client, uploads: Path
    ) -> None:
        response = read(client, f"../{uploads.name}-old/secret.png")
        assert_error(response, 403, "forbidden")
        assert "image" not in response.json()

    @pytest.mark.parametrize(
        ("path", "status", "code"),
        [
            ("photos", 400, "invalid_parameter"),
            ("cat\x00.png", 400, "invalid_parameter"),
            ("", 400, "invalid_parameter"),
            (42, 400, "invalid_parameter"),
            ("photos/missing.png", 404, "not_found"),
            ("notes.txt", 415, "unsupported_media_type"),
        ],
    )
    def test_errors(
        self, client: httpx.Client, uploads: Path, path: object, status: int, code: str
    ) -> None:
        response = read(client, path)
        assert response.status_code == status, response.text
        assert response.json()["code"] == code


def test_presets_are_the_contracts(client: httpx.Client) -> None:
    body = client.get("/presets").json()
    assert set(body) == set(PRESETS)
    assert body["thumbnail"] == {
        "format": "WEBP",
        "quality": 60,
        "max_width": 300,
        "max_height": 300,
    }
    assert body["archival"]["max_width"] is None
