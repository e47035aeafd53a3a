"""rembg's salient-object models that share one pre- and post-processing: one entry a model.

Values are rembg's (`rembg/sessions/<model>.py`): input size, normalisation, download address
and md5. The BiRefNet and SAM families post-process differently and are not served.
"""

from __future__ import annotations

from dataclasses import dataclass

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RELEASES = "https://github.com/danielgatis/rembg/releases/download/v0.0.0"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    md5: str
    input_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    precision: str = "fp32"  # rembg publishes float32 files only

    @property
    def filename(self) -> str:
        return f"{self.name}.onnx"

    @property
    def url(self) -> str:
        return f"{RELEASES}/{self.filename}"


CATALOG: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("u2netp", "8e83ca70e441ab06c318d82300c84806", 320),
        ModelSpec("u2net", "60024c5c889badc19c04ad937298a77b", 320),
        ModelSpec("u2net_human_seg", "c09ddc2e0104f800e3e1bb4652583d1f", 320),
        ModelSpec("silueta", "55e59e0d8062d2f5d013f4725ee84782", 320),
        ModelSpec(
            "isnet-general-use",
            "fc16ebd8b0c10d971d3513d564d01e29",
            1024,
            mean=(0.5, 0.5, 0.5),
            std=(1.0, 1.0, 1.0),
        ),
        ModelSpec(
            "isnet-anime",
            "6f184e756bb3bd901c8849220a83e38e",
            1024,
            std=(1.0, 1.0, 1.0),
        ),
    )
}


class UnknownModel(LookupError):
    """A model name rembg's catalog does not have."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Unknown model '{name}'; known models: {', '.join(sorted(CATALOG))}")
        self.name = name


def get_spec(name: str) -> ModelSpec:
    try:
        return CATALOG[name]
    except KeyError:
        raise UnknownModel(name) from None


# How models sit in BentoML's store (written by import_model.py, read by the model service).
STORE_MODEL_FILE = "model.onnx"
STORE_LABELS = {"purpose": "background-removal"}
