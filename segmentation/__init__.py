"""The segmentation models: which exist, where their files come from, and how they run.

Arrays in, arrays out; imports nothing from BentoML, Pillow or the rest of the project: the
model service and `import_model.py` wire it to the store.
"""

from segmentation.catalog import CATALOG, ModelSpec, UnknownModel, get_spec
from segmentation.foreground import Segmentation, segmentations
from segmentation.session import SegmentationSession, normalize

__all__ = [
    "CATALOG",
    "ModelSpec",
    "Segmentation",
    "SegmentationSession",
    "UnknownModel",
    "get_spec",
    "normalize",
    "segmentations",
]
