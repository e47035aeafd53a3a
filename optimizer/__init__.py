"""Image work around the model: options, decoding, fitting, composing, encoding.

Pure functions over Pillow images; imports nothing from BentoML.
"""

from optimizer.decode import decode_background
from optimizer.options import PRESETS, Options, OutputFormat, parse_options
from optimizer.pipeline import (
    PreparedImage,
    Result,
    Source,
    finish,
    mask_id,
    memory_needed,
    output_size,
    prepare,
    read_source,
)

__all__ = [
    "PRESETS",
    "Options",
    "OutputFormat",
    "PreparedImage",
    "Result",
    "Source",
    "decode_background",
    "finish",
    "mask_id",
    "memory_needed",
    "output_size",
    "parse_options",
    "prepare",
    "read_source",
]
