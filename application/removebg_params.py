"""What a remove.bg request (`POST /v1.0/removebg`) asks for, in this service's own terms: its
options, whether it wants remove.bg's zip, and its one image source.

Parameters follow remove.bg's documentation: `size` (preview ≈ 0.25 MP, full/4k/auto up to
25 MP, 50MP, and the legacy small/regular/medium/hd), `format` (auto/png/jpg/webp/zip),
`channels` (rgba/alpha), `crop`, `crop_margin`, `bg_color` (hex with or without `#`, or a
name). Features this service does not have are refused with a clear message, except remove.bg's
classification knobs, which are accepted and have no effect.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from application.image_url import fetch_image_url
from application.inputs import decode_base64_image, decoded_or_none
from application.replies import Upload
from contract.errors import InvalidParameter
from optimizer import Options, OutputFormat, parse_options
from optimizer.options import require_single_values
from settings import Settings

MEGAPIXEL = 1_000_000
SIZE_PIXELS = {
    "preview": MEGAPIXEL // 4,
    "small": MEGAPIXEL // 4,
    "regular": MEGAPIXEL // 4,
    "medium": 3 * MEGAPIXEL // 2,
    "hd": 4 * MEGAPIXEL,
    "full": 25 * MEGAPIXEL,
    "4k": 25 * MEGAPIXEL,
    "auto": 25 * MEGAPIXEL,
    "50mp": 50 * MEGAPIXEL,
}
DEFAULT_SIZE = "preview"  # remove.bg's default
FORMATS = {"auto", "png", "jpg", "jpeg", "webp", "zip"}
IMAGE_SOURCES = ("image_file", "image_file_b64", "image_url")
# remove.bg knobs for its own classifier and layout: accepted and ignored (no effect here).
IGNORED = {"type", "type_level", "semitransparency", "roi", "scale", "position"}
UNSUPPORTED = {"add_shadow", "bg_image_url", "bg_image_file", "shadow_type", "shadow_opacity"}
HEX_WITHOUT_HASH = re.compile(r"[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8}")


def wants_archive(fields: Mapping[str, Any]) -> bool:
    """format=zip: remove.bg's zip of the colours and the matte (`removebg.zip_result`)."""
    return _format(fields) == "zip"


def parse_removebg(fields: Mapping[str, Any]) -> Options:
    """remove.bg's form or JSON fields (image sources excluded) -> our options."""
    given = {
        name: value
        for name, value in fields.items()
        if value not in (None, "") and name not in IMAGE_SOURCES
    }
    require_single_values(given)
    unsupported = sorted(set(given) & UNSUPPORTED)
    if unsupported and not _all_off(given, unsupported):
        raise InvalidParameter(f"Not supported by this service: {', '.join(unsupported)}")
    unknown = sorted(
        set(given)
        - UNSUPPORTED
        - IGNORED
        - {"size", "format", "channels", "crop", "crop_margin", "bg_color"}
    )
    if unknown:
        raise InvalidParameter(f"Unknown parameter(s): {', '.join(unknown)[:200]}")
    fmt = _format(given)
    if fmt not in FORMATS:
        raise InvalidParameter("format must be auto, png, jpg, webp or zip")
    options = parse_options(
        {
            "format": {"auto": "PNG", "zip": "PNG"}.get(fmt, fmt),
            "crop": given.get("crop"),
            "crop_margin": _margin(given.get("crop_margin")),
            "bg_color": _color(given.get("bg_color")),
            "only_mask": _only_mask(given.get("channels")),
        }
    )
    options = replace(options, max_output_pixels=_size_pixels(given.get("size")), explicit=True)
    if fmt == "auto" and _opaque(options):
        options = replace(options, format=OutputFormat.JPEG, quality=80)
    return options


def _format(fields: Mapping[str, Any]) -> str:
    value = fields.get("format")
    return "auto" if value in (None, "") else str(value).strip().lower()


def _all_off(given: Mapping[str, Any], names: list[str]) -> bool:
    return all(str(given[name]).strip().lower() in ("false", "0", "no", "off") for name in names)


def _size_pixels(value: Any) -> int:
    size = str(value or DEFAULT_SIZE).strip().lower()
    if size not in SIZE_PIXELS:
        raise InvalidParameter(f"size must be one of {', '.join(SIZE_PIXELS)}")
    return SIZE_PIXELS[size]


def _margin(value: Any) -> str | None:
    """remove.bg writes `30px`, `10%` or `30`; ours takes `30` or `10%`."""
    return None if value is None else str(value).strip().lower().removesuffix("px")


def _color(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return f"#{text}" if HEX_WITHOUT_HASH.fullmatch(text) else text


def _only_mask(value: Any) -> bool:
    channels = str(value or "rgba").strip().lower()
    if channels not in ("rgba", "alpha"):
        raise InvalidParameter("channels must be rgba or alpha")
    return channels == "alpha"


def _opaque(options: Options) -> bool:
    return options.only_mask or (options.bg_color is not None and options.bg_color[3] == 255)


def sent_image_bytes(fields: Mapping[str, Any], upload: Upload | None) -> bytes | None:
    """The image bytes the request carries itself, when it names exactly one source (an
    image_url is never fetched just to answer a revalidation)."""
    sent = _sources(fields, upload)
    if upload is not None:
        return upload.data if len(sent) == 1 else None
    return decoded_or_none(fields.get("image_file_b64")) if sent == {"image_file_b64"} else None


def _sources(fields: Mapping[str, Any], upload: Upload | None) -> set[str]:
    sent = {name for name in IMAGE_SOURCES if fields.get(name) not in (None, "")}
    return sent | {"image_file"} if upload is not None else sent


async def image_bytes(
    fields: Mapping[str, Any], upload: Upload | None, settings: Settings
) -> bytes:
    """The one image source the request names: an upload, base64, or (when allowed) a URL."""
    sent = _sources(fields, upload)
    if len(sent) != 1:
        raise InvalidParameter("Send exactly one of image_file, image_file_b64, image_url")
    if upload is not None:
        return upload.data
    if "image_file" in sent:
        raise InvalidParameter("image_file must be a file upload; send base64 as image_file_b64")
    if "image_file_b64" in sent:
        return decode_base64_image(fields["image_file_b64"], "image_file_b64")
    if not settings.allow_image_url:
        raise InvalidParameter("image_url is disabled on this server (ALLOW_IMAGE_URL)")
    url = fields["image_url"]
    if not isinstance(url, str):
        raise InvalidParameter("image_url must be a string")
    return await fetch_image_url(
        url,
        max_bytes=settings.max_content_length,
        timeout=settings.image_url_timeout_s,
        ports=settings.image_url_ports,
    )
