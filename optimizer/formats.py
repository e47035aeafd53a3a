"""The output formats and their names."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from contract.errors import InvalidParameter


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


def output_format(value: Any) -> OutputFormat:
    name = str(value).strip().upper()
    try:
        return FORMAT_ALIASES.get(name) or OutputFormat(name)
    except ValueError:
        raise InvalidParameter(
            f"Format must be one of PNG, JPEG (JPG), WEBP, AVIF; got '{value}'"
        ) from None
