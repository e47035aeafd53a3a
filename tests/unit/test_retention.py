"""File retention: expired uploads and outputs go, fresh ones and anything outside stay."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from operations.retention import remove_expired, start_retention

TTL_S = 3600
NOW = 1_800_000_000.0
OLD = NOW - TTL_S - 60
FRESH = NOW - TTL_S + 60


def make(path: Path, mtime: float, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    uploads, outputs, outside = tmp_path / "uploads", tmp_path / "outputs", tmp_path / "outside"
    paths = {
        "uploads": uploads,
        "outputs": outputs,
        "old": make(uploads / "old.png", OLD),
        "fresh": make(uploads / "fresh.png", FRESH),
        "nested old": make(uploads / "a" / "b" / "old.jpg", OLD),
        "nested fresh": make(uploads / "a" / "fresh.jpg", FRESH),
        "old output": make(outputs / "result.png", OLD),
        "outside file": make(outside / "target.png", OLD),
        "outside nested": make(outside / "inner" / "deep.png", OLD),
    }
    link = uploads / "link.png"
    link.symlink_to(paths["outside file"])
    os.utime(link, (OLD, OLD), follow_symlinks=False)
    dir_link = uploads / "linked-dir"
    dir_link.symlink_to(outside, target_is_directory=True)
    paths["link"], paths["dir link"] = link, dir_link
    return paths


def test_removes_expired_files_only(tree: dict[str, Path]) -> None:
    removed = remove_expired([tree["uploads"], tree["outputs"]], TTL_S, now=NOW)
    assert removed == 3
    for name in ("old", "nested old", "old output"):
        assert not tree[name].exists(), name
    for name in ("fresh", "nested fresh"):
        assert tree[name].exists(), name
    assert (tree["uploads"] / "a" / "b").is_dir()  # folders are left in place


def test_symlinks_are_neither_followed_nor_removed(tree: dict[str, Path]) -> None:
    remove_expired([tree["uploads"]], TTL_S, now=NOW)
    assert tree["link"].is_symlink()
    assert tree["dir link"].is_symlink()
    assert tree["outside file"].exists()
    assert tree["outside nested"].exists()


def test_fresh_files_stay_until_they_expire(tree: dict[str, Path]) -> None:
    assert remove_expired([tree["uploads"]], TTL_S, now=NOW) == 2
    assert remove_expired([tree["uploads"]], TTL_S, now=NOW) == 0
    assert remove_expired([tree["uploads"]], TTL_S, now=FRESH + TTL_S + 1) == 2
    assert not tree["fresh"].exists() and not tree["nested fresh"].exists()


def test_default_clock_is_now(tmp_path: Path) -> None:
    old = make(tmp_path / "old.bin", time.time() - TTL_S - 60)
    fresh = make(tmp_path / "fresh.bin", time.time())
    assert remove_expired([tmp_path], TTL_S) == 1
    assert not old.exists() and fresh.exists()


def test_missing_folder_is_nothing_to_do(tmp_path: Path) -> None:
    assert remove_expired([tmp_path / "absent"], TTL_S, now=NOW) == 0


def test_background_sweep_removes_expired_files(tmp_path: Path) -> None:
    old = make(tmp_path / "old.bin", time.time() - TTL_S - 60)
    fresh = make(tmp_path / "fresh.bin", time.time())
    stop = start_retention([tmp_path], TTL_S, every_seconds=0.02)
    try:
        deadline = time.monotonic() + 5
        while old.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
    assert not old.exists()
    assert fresh.exists()


def test_a_file_that_cannot_be_deleted_is_logged_and_skipped(
    tree: dict[str, Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    stuck = tree["old"]
    real_unlink = Path.unlink

    def unlink(path: Path, missing_ok: bool = False) -> None:
        if path == stuck:
            raise PermissionError(13, "Permission denied", str(path))
        real_unlink(path, missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    removed = remove_expired([tree["uploads"], tree["outputs"]], TTL_S, now=NOW)
    assert removed == 2  # the nested old upload and the old output: the sweep went on
    assert stuck.exists() and not tree["nested old"].exists()
    assert not tree["old output"].exists()
    assert any(
        "cannot remove" in record.getMessage() and str(stuck) in record.getMessage()
        for record in caplog.records
    )
