"""Import a rembg model into BentoML's model store, with its batch axis made dynamic.

    python import_model.py                     # the configured MODEL (u2netp by default)
    python import_model.py --model u2net       # another rembg model (needs internet or cache)
    python import_model.py --model u2netp --path ./u2netp.onnx

Idempotent: a model already in the store with the same md5 is left as it is.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import bentoml

from segmentation import get_spec
from segmentation.batch_axis import make_batch_dynamic
from segmentation.catalog import STORE_LABELS, STORE_MODEL_FILE
from segmentation.sources import find_model_file
from settings import get_settings

log = logging.getLogger("import_model")


def stored_md5(name: str) -> str | None:
    try:
        md5 = bentoml.models.get(name).info.metadata.get("md5")
    except bentoml.exceptions.NotFound:
        return None
    return md5 if isinstance(md5, str) else None


def import_model(name: str, local_path: Path | None, verify: bool, force: bool) -> str:
    spec = get_spec(name)
    found = find_model_file(
        spec, local_path=local_path, u2net_home=get_settings().u2net_home, verify=verify
    )
    if not force and stored_md5(name) == found.md5:
        tag = str(bentoml.models.get(name).tag)
        log.info("%s already in the store (md5 %s)", tag, found.md5)
        return tag
    metadata = {
        "source": found.source,
        "md5": found.md5,
        "input_size": spec.input_size,
        "batch_axis": "dynamic",
    }
    with tempfile.TemporaryDirectory() as scratch:
        dynamic = Path(scratch) / STORE_MODEL_FILE
        make_batch_dynamic(found.path, dynamic)
        with bentoml.models.create(name, labels=STORE_LABELS, metadata=metadata) as model:
            dynamic.replace(model.path_of(STORE_MODEL_FILE))
    log.info("imported %s from %s", model.tag, found.source)
    return str(model.tag)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=get_settings().model, help="rembg model name")
    parser.add_argument("--path", type=Path, help="a local ONNX file to import")
    parser.add_argument("--no-verify", action="store_true", help="skip the md5 check")
    parser.add_argument("--force", action="store_true", help="import even if already stored")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(import_model(args.model, args.path, not args.no_verify, args.force))


if __name__ == "__main__":
    main()
