"""Make the batch axis of a rembg ONNX graph dynamic.

rembg's files fix the first dimension at 1, so onnxruntime refuses a batch of 4. Naming that
dimension on the input and on every output is enough: the convolutions never depended on it.
"""

from __future__ import annotations

from pathlib import Path

import onnx

BATCH_DIM = "batch"


def make_batch_dynamic(source: Path, target: Path) -> None:
    model = onnx.load(str(source))
    for value in [*model.graph.input, *model.graph.output]:
        first = value.type.tensor_type.shape.dim[0]
        first.ClearField("dim_value")
        first.dim_param = BATCH_DIM
    onnx.checker.check_model(model)
    onnx.save(model, str(target))


def has_dynamic_batch(path: Path) -> bool:
    model = onnx.load(str(path), load_external_data=False)
    dims = [value.type.tensor_type.shape.dim[0] for value in model.graph.input]
    return all(dim.dim_param for dim in dims)
