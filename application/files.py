"""`/read-file`: reading a file under UPLOAD_DIR, and nothing outside it.

The path is walked one name at a time from a descriptor of UPLOAD_DIR, each name opened
relative to its folder's descriptor with O_NOFOLLOW: the kernel never follows a symlink. A
symlink's target is read and walked the same way, and a step above UPLOAD_DIR (or an absolute
target elsewhere) is refused before anything outside is opened. What was opened is what is
checked (a regular file, by fstat) and read, so there is no window between a check and the
open in which the file could be swapped for a symlink pointing out.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from application.image_work import Cancellation, ImageWorkers
from application.replies import Reply, json_reply
from contract.errors import Forbidden, InvalidParameter, NotFound, PayloadTooLarge
from optimizer.decode import identify_format

MAX_PATH_LENGTH = 1024
MAX_SYMLINKS = 40  # as the kernel's own limit
# Percent-encoded dots and separators, and Windows separators: never part of a honest path here.
SMUGGLED_SEPARATOR = re.compile(r"%(2e|2f|5c)|\\", re.IGNORECASE)
OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY


@dataclass(frozen=True)
class UploadedFile:
    name: str  # the name of the file that was read (a symlink's target's)
    data: bytes


class UploadFolder:
    """UPLOAD_DIR as `/read-file` serves it: a file of at most `max_bytes`, in base64 JSON."""

    def __init__(self, folder: Path, max_bytes: int, workers: ImageWorkers) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.workers = workers

    async def reply(self, requested: object) -> Reply:
        found = await asyncio.to_thread(read_upload, self.folder, requested, self.max_bytes)
        image_format = await self.workers.run(Cancellation(), identify_format, found.data)
        return await asyncio.to_thread(
            lambda: json_reply(
                {
                    "success": True,
                    "filename": found.name,
                    "mimetype": f"image/{image_format.lower()}",
                    "size": len(found.data),
                    "image": base64.b64encode(found.data).decode("ascii"),
                }
            )
        )


def read_upload(upload_dir: Path, requested: object, max_bytes: int) -> UploadedFile:
    """The bytes of `requested` (relative to `upload_dir`, or absolute inside it)."""
    names = _requested_names(upload_dir, requested)
    descriptor, name = _open_beneath(upload_dir, names)
    try:
        kind = os.fstat(descriptor)
        if not stat.S_ISREG(kind.st_mode):
            raise InvalidParameter(f"'{requested}' is not a regular file")
        if kind.st_size > max_bytes:
            raise PayloadTooLarge(f"The file is larger than {max_bytes} bytes")
    except BaseException:
        os.close(descriptor)
        raise
    with os.fdopen(descriptor, "rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"The file is larger than {max_bytes} bytes")
    return UploadedFile(_printable(name), data)


def _requested_names(upload_dir: Path, requested: object) -> list[str]:
    if not isinstance(requested, str) or not requested.strip():
        raise InvalidParameter("'path' must be a non-empty string")
    if "\x00" in requested:
        raise InvalidParameter("'path' must not contain NUL bytes")
    if len(requested) > MAX_PATH_LENGTH:
        raise InvalidParameter(f"'path' is longer than {MAX_PATH_LENGTH} characters")
    try:
        requested.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidParameter("'path' is not valid Unicode text") from None
    if SMUGGLED_SEPARATOR.search(requested):
        raise Forbidden("Encoded or backslash separators are not allowed in 'path'")
    path = PurePosixPath(requested)
    if path.is_absolute():
        path = _inside(upload_dir, path)
    return list(path.parts)


def _inside(upload_dir: Path, absolute: PurePosixPath) -> PurePosixPath:
    """An absolute path as a path relative to the upload folder (as configured or resolved)."""
    for base in (upload_dir.absolute(), Path(os.path.realpath(upload_dir))):
        if absolute.is_relative_to(base):
            return absolute.relative_to(base)
    raise Forbidden("The path leads outside the upload directory")


def _open_beneath(upload_dir: Path, names: list[str]) -> tuple[int, str]:
    """A descriptor of the file the names lead to, and its name; never opens anything
    outside `upload_dir`."""
    folders = [os.open(upload_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]
    pending, links, name = list(names), 0, ""
    try:
        while pending:
            part = pending.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if len(folders) == 1:
                    raise Forbidden("The path leads outside the upload directory")
                os.close(folders.pop())
                continue
            flags = OPEN_FLAGS | (os.O_DIRECTORY if pending else 0)
            try:
                folders.append(os.open(part, flags, dir_fd=folders[-1]))
                name = part
            except OSError as error:
                if not _maybe_symlink(error, part, folders[-1]):
                    raise _refusal(error) from None
                links += 1
                if links > MAX_SYMLINKS:
                    raise InvalidParameter("'path' goes through too many symlinks") from None
                pending[:0] = _link_target(upload_dir, part, folders)
        if len(folders) == 1:
            raise InvalidParameter("'path' names the upload directory itself")
        return folders.pop(), name
    finally:
        for descriptor in folders:
            os.close(descriptor)


def _maybe_symlink(error: OSError, part: str, folder: int) -> bool:
    """Whether an open failed because `part` is a symlink (ELOOP under O_NOFOLLOW; a folder
    expected, ENOTDIR, is a symlink only if it is one)."""
    if error.errno == errno.ELOOP:
        return True
    if error.errno != errno.ENOTDIR:
        return False
    try:
        return stat.S_ISLNK(os.stat(part, dir_fd=folder, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _link_target(upload_dir: Path, part: str, folders: list[int]) -> list[str]:
    """What to walk instead of the symlink `part` in the innermost folder: its target's names
    (an absolute target restarts from the upload folder, when it lies inside). A name that is
    no symlink (any more: it was swapped meanwhile) is walked again."""
    try:
        target = os.readlink(part, dir_fd=folders[-1])
    except OSError as error:
        if error.errno == errno.EINVAL:  # not a symlink now: open it again
            return [part]
        raise _refusal(error) from None
    path = PurePosixPath(target)
    if path.is_absolute():
        path = _inside(upload_dir, path)
        while len(folders) > 1:
            os.close(folders.pop())
    return list(path.parts) or ["."]


def _refusal(error: OSError) -> Exception:
    if error.errno in (errno.ENOENT, errno.ENOTDIR):
        return NotFound("No such file in the upload directory")
    if error.errno in (errno.EACCES, errno.EPERM):
        return Forbidden("The file may not be read")
    if error.errno == errno.ENAMETOOLONG:
        return InvalidParameter("A name in 'path' is too long")
    return InvalidParameter(f"'path' cannot be opened: {error.strerror}")


def _printable(name: str) -> str:
    """A file name as valid text (names on disk need not be UTF-8)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
