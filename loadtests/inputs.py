"""Load-test inputs: skimage's photos resized to megapixel buckets, generated in memory.

Nothing is written to the repository. Each (photo, bucket, format) sample is built once per
process and cached, so every locust user shares the same bytes.

    python -m loadtests.inputs write-uploads DIR   # put the /read-file samples in DIR/loadtest/
    python -m loadtests.inputs list                # print the corpus (sizes and bytes)
"""

from __future__ import annotations

import argparse
import io
import math
import random
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import Image

PHOTO_NAMES = ("astronaut", "chelsea", "coffee", "rocket")
# Bucket label -> megapixels. Small images are what most clients send: weigh them more.
BUCKETS: dict[str, float] = {"0.25MP": 0.25, "1MP": 1.0, "3MP": 3.0, "12MP": 12.0}
BUCKET_WEIGHTS: dict[str, int] = {"0.25MP": 4, "1MP": 3, "3MP": 2, "12MP": 1}
# Upload encodings: phone and camera photos are mostly JPEG.
UPLOAD_FORMATS: dict[str, int] = {"JPEG": 2, "PNG": 1}
EXTENSIONS = {"JPEG": "jpg", "PNG": "png"}
# PNG level 1 keeps generation of the 12 MP PNGs under a second each; they stay below 10 MB,
# under the service's default MAX_CONTENT_LENGTH (16 MiB) even once base64-encoded.
SAVE_OPTIONS: dict[str, dict] = {"JPEG": {"quality": 90}, "PNG": {"compress_level": 1}}

UPLOAD_SUBDIR = "loadtest"  # in the server's UPLOAD_DIR
UPLOAD_BUCKETS = ("0.25MP", "1MP")


@dataclass(frozen=True)
class Sample:
    photo: str
    bucket: str
    fmt: str
    width: int
    height: int
    data: bytes

    @property
    def filename(self) -> str:
        return f"{self.photo}_{self.bucket.lower()}.{EXTENSIONS[self.fmt]}"

    @property
    def mimetype(self) -> str:
        return f"image/{self.fmt.lower()}"

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6


@cache
def sample(photo: str, bucket: str, fmt: str) -> Sample:
    """One photo resized to `bucket`'s megapixels (its aspect ratio kept) and encoded as `fmt`
    (JPEG or PNG); cached."""
    import skimage.data  # lazily: importing the locustfile must stay cheap

    source = Image.fromarray(getattr(skimage.data, photo)()).convert("RGB")
    aspect = source.width / source.height
    width = round(math.sqrt(BUCKETS[bucket] * 1e6 * aspect))
    image = source.resize((width, round(width / aspect)), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **SAVE_OPTIONS[fmt])
    return Sample(photo, bucket, fmt, *image.size, buffer.getvalue())


def corpus(buckets: Iterable[str] = BUCKETS) -> list[Sample]:
    """Every photo x bucket x upload format (built on the first call, then cached)."""
    return [sample(p, b, fmt) for b in buckets for p in PHOTO_NAMES for fmt in UPLOAD_FORMATS]


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def pick(rng: random.Random, buckets: Sequence[str] | None = None) -> Sample:
    """A random sample: bucket by BUCKET_WEIGHTS (restricted to `buckets`), format by
    UPLOAD_FORMATS, photo uniformly."""
    allowed = {name: BUCKET_WEIGHTS[name] for name in (buckets or BUCKETS)}
    return sample(rng.choice(PHOTO_NAMES), _weighted(rng, allowed), _weighted(rng, UPLOAD_FORMATS))


def read_file_paths() -> list[str]:
    """Paths, relative to the server's UPLOAD_DIR, of the /read-file samples."""
    return [f"{UPLOAD_SUBDIR}/{item.filename}" for item in upload_samples()]


def upload_samples() -> list[Sample]:
    """The /read-file samples: small JPEGs (the answer is the whole file in base64)."""
    return [sample(photo, bucket, "JPEG") for bucket in UPLOAD_BUCKETS for photo in PHOTO_NAMES]


def write_uploads(upload_dir: Path) -> Path:
    """Write the /read-file samples into `upload_dir`/loadtest/ (idempotent); that folder."""
    (folder := upload_dir / UPLOAD_SUBDIR).mkdir(parents=True, exist_ok=True)
    for item in upload_samples():
        (folder / item.filename).write_bytes(item.data)
    return folder


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    write = commands.add_parser("write-uploads", help="write the /read-file samples")
    write.add_argument("upload_dir", type=Path)
    commands.add_parser("list", help="print every sample of the corpus")
    args = parser.parse_args(argv)
    if args.command == "write-uploads":
        print(f"wrote {len(read_file_paths())} samples to {write_uploads(args.upload_dir)}")
    else:
        for item in corpus():
            size = f"{item.width:5}x{item.height:<5} {item.megapixels:6.2f} MP"
            print(f"{item.filename:28} {size} {len(item.data) / 1e6:7.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
