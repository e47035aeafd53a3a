"""Image work around the model: options, decoding, fitting, composing, encoding.

Pure functions over Pillow images; imports nothing from BentoML.
"""

from optimizer.decode import decode_background
from optimizer.masks import mask_id
from optimizer.options import PRESETS, Options, OutputFormat, parse_options
from optimizer.pipeline import PreparedImage, Result, finish, prepare
from optimizer.source import Source, memory_needed, output_size, read_source

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
