"""Image work around the model: options, decoding, fitting, compositing, encoding.

Pure functions over Pillow images; imports nothing from BentoML.
"""

from optimizer.options import PRESETS, Options, OutputFormat, parse_options
from optimizer.pipeline import PreparedImage, Result, Source, finish, prepare, read_source

__all__ = [
    "PRESETS",
    "Options",
    "OutputFormat",
    "PreparedImage",
    "Result",
    "Source",
    "finish",
    "parse_options",
    "prepare",
    "read_source",
]
