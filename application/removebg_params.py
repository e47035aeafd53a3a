"""What a remove.bg request (`POST /v1.0/removebg`) asks for, in this service's own terms.

Every parameter of remove.bg's API is read here (docs/removebg.md): `size` (with its credits
and the 10 MP cap of a full-size PNG), `type` and `type_level` (validated; they name
`X-Type`), `format` (`auto` decided by the result's own transparency), `roi`, `crop`,
`crop_margin`, `scale`, `position`, `channels` (`rgba`: edge colours corrected), `bg_color`,
`bg_image_file`/`bg_image_url`, `add_shadow`/`shadow_type`/`shadow_opacity`, and
`shadow_method`/`semitransparency` (validated, no effect). Each value goes through the
composition's own grammar (`optimizer.parse_options`); a value it refuses is an error naming
remove.bg's parameter (`ServiceError.parameter`), from which the HTTP edge makes remove.bg's
code. Parameters remove.bg does not have are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import cached_property
from typing import Any

from application.inputs import Backdrop, decoded_or_none
from application.replies import Upload
from contract.errors import MISSING, MULTIPLE, InvalidParameter, ServiceError
from optimizer import Options, OutputFormat, parse_options
from optimizer.grammar import boolean

MEGAPIXEL = 1_000_000
FULL_PIXELS, FULL_PNG_PIXELS = 25 * MEGAPIXEL, 10 * MEGAPIXEL
PREVIEW_CREDITS, FULL_CREDITS = Fraction(1, 4), Fraction(1)
SIZES = {  # size -> (most output pixels, credits)
    "preview": (MEGAPIXEL // 4, PREVIEW_CREDITS),
    "small": (MEGAPIXEL // 4, PREVIEW_CREDITS),
    "regular": (MEGAPIXEL // 4, PREVIEW_CREDITS),
    "medium": (3 * MEGAPIXEL // 2, FULL_CREDITS),
    "hd": (4 * MEGAPIXEL, FULL_CREDITS),
    "full": (FULL_PIXELS, FULL_CREDITS),
    "4k": (FULL_PIXELS, FULL_CREDITS),
    "auto": (FULL_PIXELS, FULL_CREDITS),
    "50mp": (50 * MEGAPIXEL, FULL_CREDITS),
}
DEFAULT_SIZE = "preview"  # remove.bg's default
# Our format for each of remove.bg's (the zip's colours are a JPEG).
FORMATS = {
    "auto": "PNG",
    "png": "PNG",
    "jpg": "JPEG",
    "jpeg": "JPEG",
    "webp": "WEBP",
    "zip": "JPEG",
}
TYPES = ("auto", "person", "product", "car", "animal", "graphic", "transportation")
TYPE_LEVELS = ("none", "1", "2", "latest")
COARSE_TYPES = ("person", "product", "car", "animal")  # what type_level=1 names
FINE_NAMES = {"graphic": "graphics"}  # type_level=2's names where they differ
OTHER = "other"
SHADOW_TYPES = ("drop", "car", "3d")  # every one is the drop shadow here
IMAGE_SOURCES = ("image_file", "image_file_b64", "image_url")
# Our options named after remove.bg's parameters where the names differ.
THEIRS = {"only_mask": "channels", "shadow": "add_shadow", "edges": "channels"}
HEX_WITHOUT_HASH = re.compile(r"[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8}")


@dataclass(frozen=True)
class RemoveBgRequest:
    options: Options  # without the background image, which is read after the budget
    archive: bool  # format=zip: color.jpg + alpha.png
    credits: Fraction
    type_header: str | None  # X-Type; None for type_level=none
    bg_image_url: str | None = None
    bg_image_file: Upload | None = None

    @cached_property
    def backdrop(self) -> Backdrop:
        """The background picture, as every processing route reads it."""
        return Backdrop(self.bg_image_file.data if self.bg_image_file else None, self.bg_image_url)


@contextmanager
def about(parameter: str) -> Iterator[None]:
    """Errors raised inside are about remove.bg's `parameter` (unless they name their own)."""
    try:
        yield
    except ServiceError as error:
        if error.parameter is None:
            error.parameter = parameter
        raise


def parse_removebg(
    fields: Mapping[str, Any], upload: Upload | None = None, bg_upload: Upload | None = None
) -> RemoveBgRequest:
    """remove.bg's form or JSON fields (and uploaded files) -> what the request asks for.
    Reads no image: every error here costs the client no credit."""
    given = {name: value for name, value in fields.items() if value not in (None, "")}
    nested = sorted(name for name, value in given.items() if isinstance(value, list | dict))
    if nested:
        raise InvalidParameter(
            f"Parameters must be single values: {nested[0]}", parameter=nested[0]
        )
    image_sources(given, upload)
    with about("format"):
        fmt = _word(given.get("format", "auto"), FORMATS, "format")
    with about("size"):
        size = _word(given.get("size", DEFAULT_SIZE), SIZES, "size")
    words_of = {"type": TYPES, "type_level": TYPE_LEVELS, "shadow_type": SHADOW_TYPES}
    for name, words in words_of.items():
        with about(name):
            _word(given.get(name, words[0]), words, name)
    for name in ("semitransparency", "add_shadow", "crop"):
        with about(name):
            boolean(given, name)
    options = _options(given, fmt, size, bg_upload)
    bg_url = given.get("bg_image_url")
    if bg_url is not None and not isinstance(bg_url, str):
        raise InvalidParameter("bg_image_url must be a string", parameter="bg_image_url")
    return RemoveBgRequest(
        options,
        archive=fmt == "zip",
        credits=SIZES[size][1],
        type_header=_type_header(given),
        bg_image_url=bg_url,
        bg_image_file=bg_upload,
    )


def image_sources(given: Mapping[str, Any], upload: Upload | None) -> set[str]:
    """The image sources a request names: exactly one, or 400 (missing or multiple)."""
    sent = {name for name in IMAGE_SOURCES if name in given} | ({"image_file"} if upload else set())
    if not sent:
        raise InvalidParameter(
            "Send the image in image_file, image_file_b64 or image_url",
            parameter="image",
            problem=MISSING,
        )
    if len(sent) > 1:
        raise InvalidParameter(
            f"Send one image source, not {', '.join(sorted(sent))}",
            parameter="image",
            problem=MULTIPLE,
        )
    return sent


def _options(given: Mapping[str, Any], fmt: str, size: str, bg_upload: Upload | None) -> Options:
    """Each remove.bg parameter through the composition's grammar, named if it fails."""
    backgrounds = [name for name in ("bg_color", "bg_image_url") if name in given]
    if len(backgrounds) + (bg_upload is not None) > 1:
        raise InvalidParameter(
            "Give one of bg_color, bg_image_url, bg_image_file",
            parameter="bg_image",
            problem=MULTIPLE,
        )
    ours = {
        "format": FORMATS[fmt],
        "crop": given.get("crop"),
        "crop_margin": _margins(given.get("crop_margin")),
        "scale": given.get("scale"),
        "position": given.get("position"),
        "roi": given.get("roi"),
        "bg_color": _color(given.get("bg_color")),
        "only_mask": str(given.get("channels", "rgba")).strip().lower() == "alpha",
        "shadow": "drop" if _shadow(given) else None,
        "shadow_opacity": given.get("shadow_opacity"),
        "edges": "decontaminate",
    }
    with about("channels"):
        _word(given.get("channels", "rgba"), ("rgba", "alpha"), "channels")
    for name, value in ours.items():  # each alone first: the error names its parameter
        with about(THEIRS.get(name, name)):
            parse_options({name: value})
    options = parse_options(ours)
    jpeg = OutputFormat.JPEG
    known_opaque = fmt == "auto" and _opaque(options)  # auto: a JPG from the start
    return replace(
        options,
        max_output_pixels=_output_pixels(size, fmt, options),
        format=jpeg if known_opaque else options.format,
        quality=jpeg.default_quality if known_opaque else options.quality,
        opaque_format=jpeg if fmt == "auto" and not known_opaque else None,
        explicit=True,
    )


def _output_pixels(size: str, fmt: str, options: Options) -> int:
    """The size's pixels; a full-size PNG at most 10 MP, as remove.bg's."""
    pixels = SIZES[size][0]
    png = fmt == "png" or (fmt == "auto" and not _opaque(options))
    return min(pixels, FULL_PNG_PIXELS) if png and pixels == FULL_PIXELS else pixels


def _opaque(options: Options) -> bool:
    """Whether the result can have no transparent pixel (format=auto is then a JPG)."""
    return options.only_mask or (options.bg_color is not None and options.bg_color[3] == 255)


def _type_header(given: Mapping[str, Any]) -> str | None:
    """X-Type: there is no classifier; the type asked for, in the names of `type_level`."""
    level = str(given.get("type_level", "1")).strip().lower()
    if level == "none":
        return None
    kind = str(given.get("type", "auto")).strip().lower()
    if kind in COARSE_TYPES:
        return kind
    return FINE_NAMES.get(kind, kind) if level != "1" and kind != "auto" else OTHER


def _shadow(given: Mapping[str, Any]) -> bool:
    """add_shadow=true, or a shadow_type, asks for the drop shadow."""
    return boolean(given, "add_shadow") or "shadow_type" in given


def _word(value: Any, words: Any, name: str) -> str:
    word = str(value).strip().lower()
    if word not in words:
        raise InvalidParameter(f"{name} must be one of {', '.join(words)}; got '{str(value)[:40]}'")
    return word


def _margins(value: Any) -> str | None:
    """remove.bg writes `30px`, `10%` or `30` per side; ours takes `30` or `10%`."""
    if value is None:
        return None
    return " ".join(side.removesuffix("px") for side in str(value).strip().lower().split())


def _color(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return f"#{text}" if HEX_WITHOUT_HASH.fullmatch(text) else text


def sent_image_bytes(fields: Mapping[str, Any], upload: Upload | None) -> bytes | None:
    """The image bytes the request carries itself (an image_url is never fetched just to
    answer a revalidation)."""
    if upload is not None:
        return upload.data
    return decoded_or_none(fields.get("image_file_b64"))
