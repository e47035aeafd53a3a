"""Base64 images, batch archives with their manifest, and unique output names."""

from __future__ import annotations

import base64
import io
import json
import zipfile

import pytest

from application.batch import BatchEntry, batch_archive, unique_names
from application.inputs import decode_base64_image
from contract.errors import InvalidImage, PayloadTooLarge, UnsupportedMediaType
from tests import images

PAYLOAD = images.photo("chelsea", "PNG")
B64 = base64.b64encode(PAYLOAD).decode("ascii")

# --- base64 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        B64,
        f"data:image/png;base64,{B64}",
        f"DATA:IMAGE/PNG;BASE64,{B64}",
        f"data:;base64,{B64}",
        f"data:application/octet-stream;base64,{B64}",
        base64.encodebytes(PAYLOAD).decode("ascii"),  # a newline every 76 characters
        base64.encodebytes(PAYLOAD).decode("ascii").replace("\n", "\r\n"),
        f"  {B64}\n",
        f"data:image/png;base64,{base64.encodebytes(PAYLOAD).decode('ascii')}",
    ],
    ids=[
        "plain",
        "data-url",
        "data-url-upper",
        "data-url-no-type",
        "data-url-octet",
        "newlines",
        "crlf",
        "surrounding-space",
        "data-url-newlines",
    ],
)
def test_base64_accepted_forms(value: str) -> None:
    assert decode_base64_image(value) == PAYLOAD


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "\n",
        "!!!not base64!!!",
        "abc",  # bad padding
        B64[:-1] + "!",
        "data:image/png;base64,",
        "data:image/png;base64,@@@@",
        "data:image/png," + B64[:10] + "%%",
        "éèà",
        "====",
    ],
    ids=[
        "empty",
        "blank",
        "newline",
        "garbage",
        "padding",
        "bad-char",
        "empty-data-url",
        "garbage-data-url",
        "non-base64-data-url",
        "non-ascii",
        "only-padding",
    ],
)
def test_base64_garbage_and_empty_rejected(value: str) -> None:
    with pytest.raises(InvalidImage) as caught:
        decode_base64_image(value)
    assert caught.value.code == "invalid_image"
    assert caught.value.code == "invalid_image"


@pytest.mark.parametrize(
    "value", [None, 123, 1.5, True, b"aGVsbG8=", ["aGVsbG8="], {"image": "aGVsbG8="}]
)
def test_base64_non_strings_rejected(value: object) -> None:
    with pytest.raises(InvalidImage):
        decode_base64_image(value)


def test_base64_of_a_tiny_payload() -> None:
    assert decode_base64_image("aGVsbG8=") == b"hello"


# --- batch archive -------------------------------------------------------------------------

MANIFEST_KEYS = {
    "name",
    "output",
    "status",
    "original_size",
    "size",
    "mimetype",
    "etag",
    "cache",
    "error",
}


def entries() -> list[BatchEntry]:
    return [
        BatchEntry(
            "cat.jpg", "cat_no_bg.png", 1000, b"PNG-1", "image/png", etag='"abc"', cache="miss"
        ),
        BatchEntry(
            "notes.txt",
            "notes_no_bg.png",
            42,
            error=UnsupportedMediaType("Not an image in a supported format"),
        ),
        BatchEntry("dog.webp", "dog_no_bg.png", 2000, b"PNG-22", "image/png"),
        BatchEntry("huge.png", "huge_no_bg.png", 77, error=PayloadTooLarge("too many pixels")),
    ]


def open_archive(data: bytes) -> tuple[zipfile.ZipFile, dict]:
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    return archive, json.loads(archive.read("manifest.json"))


def test_batch_archive_contains_each_ok_output_and_a_manifest() -> None:
    archive, _ = open_archive(batch_archive(entries()))
    assert sorted(archive.namelist()) == ["cat_no_bg.png", "dog_no_bg.png", "manifest.json"]
    assert archive.read("cat_no_bg.png") == b"PNG-1"
    assert archive.read("dog_no_bg.png") == b"PNG-22"


def test_manifest_rows_have_the_contracts_keys_in_input_order() -> None:
    _, manifest = open_archive(batch_archive(entries()))
    assert set(manifest) == {"files"}
    rows = manifest["files"]
    assert [row["name"] for row in rows] == ["cat.jpg", "notes.txt", "dog.webp", "huge.png"]
    for row in rows:
        assert set(row) == MANIFEST_KEYS


def test_manifest_ok_row() -> None:
    _, manifest = open_archive(batch_archive(entries()))
    assert manifest["files"][0] == {
        "name": "cat.jpg",
        "output": "cat_no_bg.png",
        "status": "ok",
        "original_size": 1000,
        "size": 5,
        "mimetype": "image/png",
        "etag": '"abc"',
        "cache": "miss",
        "error": None,
    }


def test_manifest_error_row_carries_the_error_body() -> None:
    _, manifest = open_archive(batch_archive(entries()))
    row = manifest["files"][1]
    assert row["status"] == "error"
    assert row["output"] is None
    assert row["size"] is None
    assert row["original_size"] == 42
    assert row["error"]["code"] == "unsupported_media_type"
    assert set(row["error"]) == {"error", "code", "solution", "details"}
    assert row["error"]["details"] == "Not an image in a supported format"
    assert manifest["files"][3]["error"]["code"] == "payload_too_large"


def test_batch_archive_of_only_errors_still_has_a_manifest() -> None:
    archive, manifest = open_archive(batch_archive([entries()[1]]))
    assert archive.namelist() == ["manifest.json"]
    assert manifest["files"][0]["status"] == "error"


def test_batch_archive_of_nothing() -> None:
    archive, manifest = open_archive(batch_archive([]))
    assert archive.namelist() == ["manifest.json"]
    assert manifest == {"files": []}


def test_batch_archive_accepts_a_generator() -> None:
    _, manifest = open_archive(batch_archive(entry for entry in entries()))
    assert len(manifest["files"]) == 4


def test_batch_archive_keeps_unicode_names() -> None:
    entry = BatchEntry("café.jpg", "café_no_bg.png", 10, b"x", "image/png")
    archive, manifest = open_archive(batch_archive([entry]))
    assert archive.read("café_no_bg.png") == b"x"
    assert manifest["files"][0]["name"] == "café.jpg"


# --- unique names --------------------------------------------------------------------------


def test_unique_names_deduplicates_in_order() -> None:
    names = ["a_no_bg.png", "a_no_bg.png", "b_no_bg.png", "a_no_bg.png", "b_no_bg.png"]
    assert unique_names(names) == [
        "a_no_bg.png",
        "a_no_bg-2.png",
        "b_no_bg.png",
        "a_no_bg-3.png",
        "b_no_bg-2.png",
    ]


def test_unique_names_without_extension() -> None:
    assert unique_names(["x", "x", "x"]) == ["x", "x-2", "x-3"]


def test_unique_names_leaves_distinct_names_alone() -> None:
    names = ["a.png", "b.png", "c.jpg", "a.jpg"]
    assert unique_names(names) == names


@pytest.mark.parametrize("count", [1, 2, 25])
def test_unique_names_are_unique(count: int) -> None:
    result = unique_names(["image_no_bg.png"] * count)
    assert len(result) == count
    assert len(set(result)) == count


def test_unique_names_never_collide_with_a_literal_name() -> None:
    result = unique_names(["a.png", "a-2.png", "a.png"])
    assert len(set(result)) == 3
