"""Named option sets: a preset's values apply unless the request gives its own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from optimizer.formats import OutputFormat


@dataclass(frozen=True)
class Preset:
    format: OutputFormat
    quality: int
    max_width: int | None = None
    max_height: int | None = None
    # Composition presets only: option values as a client would write them.
    bg_color: str | None = None
    canvas: str | None = None
    scale: str | None = None

    def as_options(self) -> dict[str, Any]:
        composition = {"bg_color": self.bg_color, "canvas": self.canvas, "scale": self.scale}
        return {
            "format": self.format.value,
            "quality": self.quality,
            "max_width": self.max_width,
            "max_height": self.max_height,
            **{name: value for name, value in composition.items() if value is not None},
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
    # Marketplace main images (docs/api.md, "Presets"): the product centred on pure white,
    # its larger side 90 % of a 1000 px square.
    "product": Preset(OutputFormat.JPEG, 90, bg_color="white", canvas="1000x1000", scale="90%"),
}
