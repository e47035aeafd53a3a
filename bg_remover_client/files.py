"""Finding the input images and naming the outputs.

Outputs are named like the service's downloads, `<stem>_no_bg.<ext>`. The name is planned
before anything is sent (so existing outputs can be skipped without spending rate-limit
budget) and the server's `Content-Disposition` filename is used once it answers, unless that
name would clash with another output of the same run.
"""

from __future__ import annotations

import codecs
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".avif"})
OUTPUT_SUFFIX = "_no_bg"
FORMAT_EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "JPG": "jpg", "WEBP": "webp", "AVIF": "avif"}
DEFAULT_FORMAT = "PNG"
# Characters no file name should get from a server: path separators, controls, quoting.
UNSAFE_NAME_CHARS = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')


class InputError(Exception):
    """An input named on the command line does not exist (a usage error)."""


@dataclass(frozen=True)
class InputFile:
    path: Path
    # Where the output goes below --output-dir: the path inside the folder given on the
    # command line, or just the file name for a file given directly.
    relative: Path


# --- discovering inputs --------------------------------------------------------------------


def discover(inputs: Sequence[Path], recursive: bool = False) -> list[InputFile]:
    """The images to process, in command-line order, each file once."""
    found: list[InputFile] = []
    seen: set[Path] = set()
    for item in _expand(inputs, recursive):
        key = item.path.resolve()
        if key not in seen:
            seen.add(key)
            found.append(item)
    return found


def _expand(inputs: Iterable[Path], recursive: bool) -> Iterator[InputFile]:
    for given in inputs:
        if given.is_dir():
            yield from (
                InputFile(path, path.relative_to(given)) for path in folder_images(given, recursive)
            )
        elif given.is_file():
            # A file named explicitly is sent whatever its extension: the server decides.
            yield InputFile(given, Path(given.name))
        else:
            raise InputError(f"no such file or folder: {given}")


def folder_images(folder: Path, recursive: bool = False) -> list[Path]:
    """A folder's images by extension, sorted, without hidden files or earlier outputs."""
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(path for path in candidates if _is_input_image(path, folder))


def _is_input_image(path: Path, folder: Path) -> bool:
    relative = path.relative_to(folder)
    return (
        path.suffix.lower() in IMAGE_EXTENSIONS
        # Hidden files (e.g. macOS `._x.jpg`) are metadata, not pictures.
        and not any(part.startswith(".") for part in relative.parts)
        # A second run over the same folder must not cut out its own earlier results.
        and not path.stem.endswith(OUTPUT_SUFFIX)
        and path.is_file()
    )


# --- naming outputs ------------------------------------------------------------------------


def output_extension(fmt: str | None) -> str:
    """The extension the server will use for `format` (its default when None)."""
    chosen = fmt or DEFAULT_FORMAT
    return FORMAT_EXTENSIONS.get(chosen.upper(), chosen.lower())


def output_name(source: Path, ext: str) -> str:
    return f"{source.stem}{OUTPUT_SUFFIX}.{ext}"


def output_folder(item: InputFile, output_dir: Path | None) -> Path:
    """Beside the input, or under --output-dir keeping the sub-path inside a folder input."""
    if output_dir is None:
        return item.path.parent
    return output_dir / item.relative.parent


def plan_outputs(items: Sequence[InputFile], output_dir: Path | None, ext: str) -> list[Path]:
    """One distinct output path per input.

    `a.jpg` and `a.png` in one folder would both become `a_no_bg.png`; the later one gets its
    source extension in the name (`a_png_no_bg.png`) rather than overwrite the first.
    """
    planned: list[Path] = []
    taken: set[Path] = set()
    for item in items:
        path = output_folder(item, output_dir) / output_name(item.path, ext)
        if path in taken:
            stem = f"{item.path.stem}_{item.path.suffix.lstrip('.').lower()}"
            path = path.with_name(output_name(Path(stem), ext))
        taken.add(path)
        planned.append(path)
    return planned


def choose_output(
    planned: Path, server_name: str | None, claimed: set[Path], overwrite: bool
) -> Path:
    """The server's filename beside `planned`, unless it is unsafe or would clash.

    `claimed` holds every output path planned in this run: the server's name may not take
    another input's place, nor (without --overwrite) replace a file that already exists.
    """
    name = safe_filename(server_name)
    if name is None:
        return planned
    candidate = planned.with_name(name)
    if candidate == planned:
        return planned
    if candidate in claimed or (candidate.exists() and not overwrite):
        return planned
    return candidate


def safe_filename(name: str | None) -> str | None:
    """A plain file name from a server-given one: no directories, no control characters."""
    if not name:
        return None
    base = re.split(r"[/\\]", name)[-1]
    base = UNSAFE_NAME_CHARS.sub("_", base).strip(" ")
    if base in {"", ".", ".."} or base.startswith("."):
        return None
    return base


def filename_from_content_disposition(header: str | None) -> str | None:
    """The file name of a `Content-Disposition` header; RFC 6266 `filename*` wins."""
    if not header:
        return None
    params = _disposition_params(header)
    extended = params.get("filename*")
    if extended:
        decoded = _decode_ext_value(extended)
        if decoded:
            return decoded
    return params.get("filename") or None


def _disposition_params(header: str) -> dict[str, str]:
    """Parameters of `attachment; a="x; y"; b=z`: lower-cased names, quotes removed."""
    pattern = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
    params: dict[str, str] = {}
    for key, raw in pattern.findall(header):
        value = raw.strip()
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params.setdefault(key.lower(), value)
    return params


def _decode_ext_value(value: str) -> str | None:
    """RFC 5987 `charset'language'percent-encoded` → text, or None when malformed."""
    parts = value.split("'", 2)
    if len(parts) != 3:
        return None
    charset, _language, encoded = parts
    try:
        codecs.lookup(charset or "utf-8")  # unquote() only looks it up when it sees a `%`
        return unquote(encoded, encoding=charset or "utf-8", errors="strict")
    except (LookupError, UnicodeDecodeError):
        return None


# --- writing -------------------------------------------------------------------------------


def write_atomically(path: Path, data: bytes) -> None:
    """Write via a temporary file and a rename: an interrupted run leaves no half-written
    output that the next run would mistake for a finished one and skip."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
