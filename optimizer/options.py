"""The processing options of the contract: parsing, validation, presets, defaults.

Raw values arrive as form strings or JSON values; `parse_options` turns them into one frozen
`Options` or raises `InvalidParameter` naming the first bad option.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from PIL import ImageColor

from contract.errors import InvalidParameter

Color = tuple[int, int, int, int]

TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
QUALITY_RANGE = (10, 100)
DIMENSION_RANGE = (100, 4000)
MARGIN_PX_MAX = 500
MARGIN_PERCENT_MAX = 50
LOSSLESS_PNG_QUALITY = 95


class OutputFormat(StrEnum):
    PNG = "PNG"
    JPEG = "JPEG"
    WEBP = "WEBP"
    AVIF = "AVIF"

    @property
    def extension(self) -> str:
        return "jpg" if self is OutputFormat.JPEG else self.value.lower()

    @property
    def mimetype(self) -> str:
        return f"image/{self.value.lower()}"

    @property
    def default_quality(self) -> int:
        return 100 if self is OutputFormat.PNG else 80


FORMAT_ALIASES = {"JPG": OutputFormat.JPEG}


@dataclass(frozen=True)
class Preset:
    format: OutputFormat
    quality: int
    max_width: int | None = None
    max_height: int | None = None

    def as_options(self) -> dict[str, Any]:
        return {
            "format": self.format.value,
            "quality": self.quality,
            "max_width": self.max_width,
            "max_height": self.max_height,
        }


PRESETS: dict[str, Preset] = {
    "web": Preset(OutputFormat.JPEG, 80, 1200, 800),
    "social": Preset(OutputFormat.PNG, 90, 1080, 1080),
    "email": Preset(OutputFormat.JPEG, 75, 800, 600),
    "thumbnail": Preset(OutputFormat.WEBP, 60, 300, 300),
    "mobile": Preset(OutputFormat.WEBP, 70, 800, 600),
    "desktop": Preset(OutputFormat.JPEG, 85, 1920, 1080),
    "archival": Preset(OutputFormat.PNG, 95),
    "print": Preset(OutputFormat.PNG, 95),
}


@dataclass(frozen=True)
class Margin:
    value: int = 0
    percent: bool = False

    def pixels(self, box_side: int) -> int:
        return round(box_side * self.value / 100) if self.percent else self.value


@dataclass(frozen=True)
class Options:
    format: OutputFormat = OutputFormat.PNG
    quality: int = 100
    max_width: int | None = None
    max_height: int | None = None
    bg_color: Color | None = None
    crop: bool = False
    crop_margin: Margin = field(default_factory=Margin)
    only_mask: bool = False
    model: str | None = None
    preset: str | None = None
    explicit: bool = False  # any option was given: the X-Optimization-Used header
    max_output_pixels: int | None = None  # not a contract option: remove.bg's `size`

    @property
    def output_id(self) -> str:
        """Every option that changes the output's bytes (not `preset` or `explicit`, which
        only change how the result is described)."""
        return repr(
            (
                self.format.value,
                self.quality,
                self.max_width,
                self.max_height,
                self.bg_color,
                self.crop,
                self.crop_margin.value,
                self.crop_margin.percent,
                self.only_mask,
                self.model,
                self.max_output_pixels,
            )
        )

    @property
    def box(self) -> tuple[int | None, int | None]:
        return self.max_width, self.max_height

    @property
    def limits_size(self) -> bool:
        return any(self.box) or self.max_output_pixels is not None

    @property
    def lossless_png(self) -> bool:
        return self.format is OutputFormat.PNG and self.quality >= LOSSLESS_PNG_QUALITY


OPTION_NAMES = frozenset(
    {
        "format",
        "quality",
        "max_width",
        "max_height",
        "preset",
        "bg_color",
        "crop",
        "crop_margin",
        "only_mask",
        "model",
    }
)


def parse_options(raw: Mapping[str, Any]) -> Options:
    given = {name: value for name, value in raw.items() if not _is_blank(value)}
    unknown = sorted(set(given) - OPTION_NAMES)
    if unknown:
        raise InvalidParameter(f"Unknown option(s): {', '.join(unknown)[:200]}")
    require_single_values(given)
    preset_name = _preset_name(given.get("preset"))
    merged = {**(PRESETS[preset_name].as_options() if preset_name else {}), **given}
    fmt = _format(merged.get("format", OutputFormat.PNG.value))
    return Options(
        format=fmt,
        quality=_int(merged, "quality", *QUALITY_RANGE, default=fmt.default_quality),
        max_width=_int(merged, "max_width", *DIMENSION_RANGE),
        max_height=_int(merged, "max_height", *DIMENSION_RANGE),
        bg_color=_color(merged.get("bg_color")),
        crop=_bool(merged, "crop"),
        crop_margin=_margin(merged.get("crop_margin")),
        only_mask=_bool(merged, "only_mask"),
        model=_model(merged.get("model")),
        preset=preset_name,
        explicit=bool(given),
    )


def require_single_values(values: Mapping[str, Any]) -> None:
    """Options are single values: a JSON list or object is refused before anything reads it."""
    nested = sorted(name for name, value in values.items() if isinstance(value, list | dict))
    if nested:
        raise InvalidParameter(f"Option(s) must be single values: {', '.join(nested)}")


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _preset_name(value: Any) -> str | None:
    if value is None:
        return None
    name = str(value).strip().lower()
    if name not in PRESETS:
        raise InvalidParameter(f"Unknown preset '{value}'; presets: {', '.join(PRESETS)}")
    return name


def _format(value: Any) -> OutputFormat:
    name = str(value).strip().upper()
    try:
        return FORMAT_ALIASES.get(name) or OutputFormat(name)
    except ValueError:
        raise InvalidParameter(
            f"Format must be one of PNG, JPEG (JPG), WEBP, AVIF; got '{value}'"
        ) from None


def _int(
    values: Mapping[str, Any], name: str, low: int, high: int, default: int | None = None
) -> Any:
    value = values.get(name)
    if value is None:
        return default
    number = _as_int(value)
    if number is None or not low <= number <= high:
        label = name.replace("_", " ").capitalize()
        raise InvalidParameter(f"{label} must be between {low}-{high}")
    return number


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if re.fullmatch(r"[+-]?[0-9]{1,9}", text) else None


def _bool(values: Mapping[str, Any], name: str) -> bool:
    value = values.get(name)
    if value is None or isinstance(value, bool):
        return bool(value)
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise InvalidParameter(f"{name} must be a boolean (true/false, 1/0, yes/no, on/off)")


def _color(value: Any) -> Color | None:
    if value is None:
        return None
    text = str(value).strip()
    try:
        if len(text) > 64:
            raise ValueError(text)
        rgba = ImageColor.getrgb(text)
    except ValueError:
        raise InvalidParameter(
            f"bg_color must be #rgb, #rrggbb, #rrggbbaa or a CSS colour name; got '{text[:64]}'"
        ) from None
    return (*rgba, 255)[:4] if len(rgba) == 3 else rgba


def _margin(value: Any) -> Margin:
    if value is None:
        return Margin()
    text = str(value).strip()
    percent = text.endswith("%")
    number = _as_int(text.removesuffix("%"))
    limit = MARGIN_PERCENT_MAX if percent else MARGIN_PX_MAX
    if number is None or not 0 <= number <= limit:
        raise InvalidParameter(
            f"crop_margin must be 0-{MARGIN_PX_MAX} px or 0-{MARGIN_PERCENT_MAX}%; got '{text}'"
        )
    return Margin(number, percent)


def _model(value: Any) -> str | None:
    if value is None:
        return None
    name = str(value).strip()
    if not MODEL_NAME.fullmatch(name):
        raise InvalidParameter(f"Invalid model name '{name[:64]}'")
    return name
