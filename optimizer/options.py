"""The processing options of the contract: defaults, presets, and one frozen `Options`.

Raw values arrive as form strings or JSON values; `parse_options` turns them into `Options` or
raises `InvalidParameter` naming the first bad option (each value's grammar:
`optimizer/grammar.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from contract.errors import InvalidParameter
from optimizer import grammar
from optimizer.formats import OutputFormat, output_format
from optimizer.geometry import Margin, Margins, Roi, Size
from optimizer.grammar import Color
from optimizer.placement import Placement
from optimizer.presets import PRESETS

__all__ = ["PRESETS", "Color", "Margin", "Margins", "Options", "OutputFormat", "parse_options"]

QUALITY_RANGE = (10, 100)
DIMENSION_RANGE = (100, 4000)
LOSSLESS_PNG_QUALITY = 95
DEFAULT_MAX_CANVAS_SIDE = 4000  # the MAX_CANVAS_SIDE setting's default
DEFAULT_SHADOW_OPACITY = 50
CENTER = (50, 50)


@dataclass(frozen=True)
class Options:
    format: OutputFormat = OutputFormat.PNG
    quality: int = 100
    max_width: int | None = None
    max_height: int | None = None
    bg_color: Color | None = None
    crop: bool = False
    crop_margin: Margins = field(default_factory=Margins)
    only_mask: bool = False
    model: str | None = None
    preset: str | None = None
    explicit: bool = False  # any option was given: the X-Optimization-Used header
    max_output_pixels: int | None = None  # not a contract option: remove.bg's `size`
    # Composition, with its defaults applied: None keeps the subject's own size and place.
    scale: int | None = None  # percent of the canvas
    position: tuple[int, int] | None = None  # percent of the free room, x and y
    canvas: Size | None = None
    roi: Roi | None = None
    bg_image: str | None = None  # the digest of the background image's bytes
    shadow: bool = False
    shadow_opacity: int = DEFAULT_SHADOW_OPACITY
    decontaminate: bool = False  # edges=decontaminate
    # Not a contract option: remove.bg's format=auto, `format` unless the result has no
    # transparent pixel, then this format (at its default quality).
    opaque_format: OutputFormat | None = None

    @property
    def output_id(self) -> str:
        """Every option that changes the output's bytes (not `preset` or `explicit`, which
        only change how the result is described). A request without composition keeps the
        id it had before composition existed, so its cached results stay valid."""
        margin = self.crop_margin.uniform
        base = (
            self.format.value,
            self.quality,
            self.max_width,
            self.max_height,
            self.bg_color,
            self.crop,
            *((margin.value, margin.percent) if margin else (repr(self.crop_margin), None)),
            self.only_mask,
            self.model,
            self.max_output_pixels,
        )
        if self.opaque_format is not None:
            base = (*base, f"or {self.opaque_format.value} when opaque")
        if not self.composes:
            return repr(base)
        composition = (
            self.scale,
            self.position,
            self.canvas,
            self.roi,
            self.bg_image,
            self.shadow_opacity if self.shadow else None,
            self.decontaminate,
        )
        return repr((*base, composition))

    @property
    def mask_id(self) -> str:
        """What besides the input and the model decides the model's mask: the region it ran
        on. Part of the mask cache's key."""
        return "" if self.roi is None else f"roi={self.roi!r}"

    @property
    def placement(self) -> Placement | None:
        """None when the subject keeps its size and place in the (cropped) photo."""
        if self.scale is None and self.position is None and self.canvas is None:
            return None
        return Placement(
            scale=None if self.scale is None else self.scale / 100,
            position=None
            if self.position is None
            else (self.position[0] / 100, self.position[1] / 100),
            canvas=self.canvas,
        )

    @property
    def composes(self) -> bool:
        """Whether any composition option is in effect."""
        return (
            self.placement is not None
            or self.roi is not None
            or self.bg_image is not None
            or self.shadow
            or self.decontaminate
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
        "scale",
        "position",
        "canvas",
        "roi",
        "shadow",
        "shadow_opacity",
        "edges",
    }
)


def parse_options(
    raw: Mapping[str, Any],
    *,
    background_digest: str | None = None,
    max_canvas_side: int = DEFAULT_MAX_CANVAS_SIDE,
) -> Options:
    """`background_digest`: the hash of the background image's bytes when one was sent
    (`bg_image`, which arrives as a file or a URL rather than as an option value)."""
    given = {name: value for name, value in raw.items() if not _is_blank(value)}
    unknown = sorted(set(given) - OPTION_NAMES)
    if unknown:
        raise InvalidParameter(f"Unknown option(s): {', '.join(unknown)[:200]}")
    require_single_values(given)
    if background_digest is not None and "bg_color" in given:
        raise InvalidParameter("bg_color and bg_image cannot be used together: choose one")
    preset_name = _preset_name(given.get("preset"))
    preset = PRESETS[preset_name].as_options() if preset_name else {}
    if background_digest is not None:
        preset.pop("bg_color", None)  # the background image given replaces the preset's colour
    merged = {**preset, **given}
    fmt = output_format(merged.get("format", OutputFormat.PNG.value))
    canvas = grammar.canvas(merged.get("canvas"), max_canvas_side)
    scale = grammar.scale(merged.get("scale"))
    if canvas is not None and "scale" not in merged:
        scale = 100  # a canvas is filled by the subject unless told otherwise
    position = grammar.position(merged.get("position"))
    if (scale is not None or canvas is not None) and "position" not in merged:
        position = CENTER
    return Options(
        format=fmt,
        quality=grammar.integer(merged, "quality", *QUALITY_RANGE, default=fmt.default_quality),
        max_width=grammar.integer(merged, "max_width", *DIMENSION_RANGE),
        max_height=grammar.integer(merged, "max_height", *DIMENSION_RANGE),
        bg_color=grammar.color(merged.get("bg_color")),
        crop=grammar.boolean(merged, "crop"),
        crop_margin=grammar.margins(merged.get("crop_margin")),
        only_mask=grammar.boolean(merged, "only_mask"),
        model=grammar.model_name(merged.get("model")),
        preset=preset_name,
        explicit=bool(given) or background_digest is not None,
        scale=scale,
        position=position,
        canvas=canvas,
        roi=grammar.roi(merged.get("roi")),
        bg_image=background_digest,
        shadow=grammar.shadow(merged.get("shadow")),
        shadow_opacity=grammar.integer(
            merged,
            "shadow_opacity",
            *grammar.OPACITY_RANGE,
            default=DEFAULT_SHADOW_OPACITY,
            label="shadow_opacity",
        ),
        decontaminate=grammar.edges(merged.get("edges")),
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
