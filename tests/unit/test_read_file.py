"""/read-file confinement: only regular files inside UPLOAD_DIR, whatever the path says.

Layout built in tmp_path:

    uploads/photo.png            a normal file
    uploads/sub/inner.png        a file in a subfolder
    uploads/sub/deeper/          an empty folder
    uploads/escape.png ->        ../secret.png   (symlink pointing outside)
    uploads/escape_dir ->        ..              (symlinked folder outside)
    uploads/alias.png ->         photo.png       (symlink staying inside)
    uploads/dangling.png ->      missing.png     (symlink to nothing, inside)
    uploads-old/old.png          a sibling folder sharing the prefix
    secret.png                   outside
"""

from __future__ import annotations

from pathlib import Path

import pytest

from application.files import read_upload, resolve_upload_path
from contract.errors import Forbidden, InvalidParameter, NotFound, PayloadTooLarge

CONTENT = b"\x89PNG fake image bytes"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    uploads = tmp_path / "uploads"
    (uploads / "sub" / "deeper").mkdir(parents=True)
    (uploads / "photo.png").write_bytes(CONTENT)
    (uploads / "sub" / "inner.png").write_bytes(b"inner")
    (uploads / "with space é.png").write_bytes(b"unicode")
    (tmp_path / "secret.png").write_bytes(b"secret")
    (tmp_path / "uploads-old").mkdir()
    (tmp_path / "uploads-old" / "old.png").write_bytes(b"old")
    (uploads / "escape.png").symlink_to(tmp_path / "secret.png")
    (uploads / "escape_dir").symlink_to(tmp_path)
    (uploads / "alias.png").symlink_to("photo.png")
    (uploads / "dangling.png").symlink_to("missing.png")
    (uploads / "dangling_out.png").symlink_to(tmp_path / "nowhere.png")
    return uploads


def test_normal_file(tree: Path) -> None:
    path = resolve_upload_path(tree, "photo.png")
    assert path == (tree / "photo.png").resolve()
    assert read_upload(path, 1 << 20) == CONTENT


@pytest.mark.parametrize(
    "requested",
    [
        "sub/inner.png",
        "./sub/inner.png",
        "sub//inner.png",
        "sub/deeper/../inner.png",
        "sub/../sub/inner.png",
    ],
)
def test_file_in_a_subfolder(tree: Path, requested: str) -> None:
    assert resolve_upload_path(tree, requested) == (tree / "sub" / "inner.png").resolve()


def test_unicode_name_with_space(tree: Path) -> None:
    assert read_upload(resolve_upload_path(tree, "with space é.png"), 100) == b"unicode"


def test_symlink_inside_the_folder_is_followed(tree: Path) -> None:
    assert resolve_upload_path(tree, "alias.png") == (tree / "photo.png").resolve()


def test_absolute_path_inside_is_accepted(tree: Path) -> None:
    assert (
        resolve_upload_path(tree, str(tree / "sub" / "inner.png"))
        == (tree / "sub" / "inner.png").resolve()
    )


def test_upload_dir_given_as_a_relative_path(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree.parent)
    assert resolve_upload_path(Path("uploads"), "photo.png") == (tree / "photo.png").resolve()


def test_upload_dir_that_is_itself_a_symlink(tree: Path, tmp_path: Path) -> None:
    link = tmp_path / "uploads-link"
    link.symlink_to(tree)
    assert resolve_upload_path(link, "photo.png") == (tree / "photo.png").resolve()
    with pytest.raises(Forbidden):
        resolve_upload_path(link, "../secret.png")


# --- outside: 403 --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "requested",
    [
        "../secret.png",
        "sub/../../secret.png",
        "../../../../../../etc/passwd",
        "..",
        "../uploads-old/old.png",
        "escape.png",
        "escape_dir/secret.png",
        "escape_dir/uploads-old/old.png",
        "dangling_out.png",
        "../nowhere.png",  # missing AND outside: 403, not 404 (no existence oracle)
    ],
)
def test_outside_is_forbidden(tree: Path, requested: str) -> None:
    with pytest.raises(Forbidden) as caught:
        resolve_upload_path(tree, requested)
    assert caught.value.code == "forbidden"
    assert caught.value.code == "forbidden"


def test_absolute_path_outside_is_forbidden(tree: Path, tmp_path: Path) -> None:
    for requested in [
        str(tmp_path / "secret.png"),
        "/etc/passwd",
        "/",
        str(tmp_path / "uploads-old" / "old.png"),
        str(tree) + "-old/old.png",
    ]:
        with pytest.raises(Forbidden):
            resolve_upload_path(tree, requested)


@pytest.mark.parametrize(
    "requested",
    [
        "%2e%2e%2fsecret.png",
        "%2E%2E%2Fsecret.png",
        "..%2fsecret.png",
        "%2e%2e/secret.png",
        "sub%2finner.png",
        "..%5csecret.png",
        "..\\secret.png",
        "sub\\inner.png",
    ],
)
def test_encoded_separators_and_backslashes_are_forbidden(tree: Path, requested: str) -> None:
    with pytest.raises(Forbidden):
        resolve_upload_path(tree, requested)


# --- bad requests: 400 ---------------------------------------------------------------------


@pytest.mark.parametrize("requested", ["photo.png\x00.txt", "\x00", "../secret.png\x00"])
def test_nul_bytes_are_invalid(tree: Path, requested: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        resolve_upload_path(tree, requested)
    assert caught.value.code == "invalid_parameter"


@pytest.mark.parametrize("requested", ["sub", "sub/", "sub/deeper", ".", "./", str(Path("sub"))])
def test_directory_is_invalid(tree: Path, requested: str) -> None:
    with pytest.raises(InvalidParameter):
        resolve_upload_path(tree, requested)


def test_upload_dir_itself_by_absolute_path_is_invalid(tree: Path) -> None:
    with pytest.raises(InvalidParameter):
        resolve_upload_path(tree, str(tree))


@pytest.mark.parametrize("requested", [None, 42, ["photo.png"], {"p": 1}, b"photo.png", "", "   "])
def test_non_string_or_blank_is_invalid(tree: Path, requested: object) -> None:
    with pytest.raises(InvalidParameter):
        resolve_upload_path(tree, requested)


def test_overlong_path_is_invalid(tree: Path) -> None:
    with pytest.raises(InvalidParameter):
        resolve_upload_path(tree, "a/" * 600 + "photo.png")


# --- missing: 404 --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "requested", ["missing.png", "sub/missing.png", "nosuchdir/x.png", "dangling.png"]
)
def test_missing_file_is_not_found(tree: Path, requested: str) -> None:
    with pytest.raises(NotFound) as caught:
        resolve_upload_path(tree, requested)
    assert caught.value.code == "not_found"
    assert caught.value.code == "not_found"


def test_missing_absolute_path_inside_is_not_found(tree: Path) -> None:
    with pytest.raises(NotFound):
        resolve_upload_path(tree, str(tree / "gone.png"))


# --- size: 413 -----------------------------------------------------------------------------


def test_oversized_file_is_payload_too_large(tree: Path) -> None:
    path = resolve_upload_path(tree, "photo.png")
    with pytest.raises(PayloadTooLarge) as caught:
        read_upload(path, len(CONTENT) - 1)
    assert caught.value.code == "payload_too_large"


def test_file_of_exactly_the_limit_is_read(tree: Path) -> None:
    path = resolve_upload_path(tree, "photo.png")
    assert read_upload(path, len(CONTENT)) == CONTENT


def test_a_file_removed_between_check_and_read_is_not_found(tree: Path) -> None:
    """The retention sweep may delete a file after the path was checked: 404, not a crash."""
    path = resolve_upload_path(tree, "photo.png")
    path.unlink()
    with pytest.raises(NotFound) as caught:
        read_upload(path, len(CONTENT))
    assert caught.value.code == "not_found"
