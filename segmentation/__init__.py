"""The segmentation models: which exist, where their files come from, and how they run.

Imports nothing from BentoML: the model service and `import_model.py` wire it to the store.
"""

from segmentation.catalog import CATALOG, ModelSpec, get_spec
from segmentation.session import SegmentationSession, model_input

__all__ = ["CATALOG", "ModelSpec", "SegmentationSession", "get_spec", "model_input"]
