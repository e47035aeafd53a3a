"""Segmentation: batching through the dynamic model, rembg's per-image maths, the catalog, and
where model files come from (never from the network here)."""

from __future__ import annotations

import hashlib
import shutil
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument
from PIL import Image

from optimizer.pipeline import model_input
from segmentation import sources
from segmentation.batch_axis import has_dynamic_batch, make_batch_dynamic
from segmentation.catalog import CATALOG, ModelSpec, UnknownModel, get_spec
from segmentation.session import SegmentationSession, normalize, to_masks
from tests import images

U2NETP = get_spec("u2netp")


def photo_batch(count: int = 4) -> np.ndarray:
    names = (images.PHOTO_NAMES * count)[:count]
    return np.stack([model_input(images.photo_image(name), U2NETP.input_size) for name in names])


@pytest.fixture(scope="module")
def dynamic_session(stored_model_path: Path) -> SegmentationSession:
    return SegmentationSession(stored_model_path, U2NETP, run_batch=8)


# --- the real model ------------------------------------------------------------------------


@pytest.mark.slow
def test_a_batch_of_four_equals_four_single_runs(dynamic_session: SegmentationSession) -> None:
    batch = photo_batch(4)
    together = dynamic_session.predict(batch)
    assert together.shape == (4, 320, 320)
    assert together.dtype == np.uint8
    for index in range(4):
        alone = dynamic_session.predict(batch[index : index + 1])
        assert np.array_equal(together[index], alone[0]), f"image {index} differs in a batch"


@pytest.mark.slow
def test_masks_find_a_subject(dynamic_session: SegmentationSession) -> None:
    masks = dynamic_session.predict(photo_batch(4))
    for mask in masks:
        assert mask.min() == 0
        assert mask.max() == 255
        assert 0.02 < (mask > 127).mean() < 0.98


@pytest.mark.slow
def test_stored_model_has_a_dynamic_batch_axis(stored_model_path: Path) -> None:
    assert has_dynamic_batch(stored_model_path)


@pytest.mark.slow
def test_original_model_refuses_a_batch_of_four(original_model_path: Path) -> None:
    assert not has_dynamic_batch(original_model_path)
    session = SegmentationSession(original_model_path, U2NETP, run_batch=4)
    with pytest.raises(InvalidArgument, match=r"index: 0 Got: 4 Expected: 1"):
        session.predict(photo_batch(4))
    assert session.predict(photo_batch(1)).shape == (1, 320, 320)  # one image is fine


@pytest.mark.slow
def test_original_and_dynamic_models_agree_on_one_image(
    original_model_path: Path, dynamic_session: SegmentationSession
) -> None:
    one = photo_batch(1)
    original = SegmentationSession(original_model_path, U2NETP).predict(one)
    assert np.array_equal(original, dynamic_session.predict(one))


@pytest.mark.slow
def test_make_batch_dynamic_on_a_copy_of_the_original(
    original_model_path: Path, tmp_path: Path
) -> None:
    source = tmp_path / "u2netp-original.onnx"
    shutil.copyfile(original_model_path, source)
    target = tmp_path / "u2netp-dynamic.onnx"
    assert not has_dynamic_batch(source)
    make_batch_dynamic(source, target)
    assert has_dynamic_batch(target)
    assert sources.md5_of(source) == sources.md5_of(original_model_path), "source untouched"
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == "batch"
    assert all(output.shape[0] == "batch" for output in session.get_outputs())
    masks = SegmentationSession(target, U2NETP, run_batch=3).predict(photo_batch(3))
    assert masks.shape == (3, 320, 320)


# --- rembg's per-image maths -------------------------------------------------------------


def test_model_input_is_a_square_rgb_uint8() -> None:
    array = model_input(Image.new("RGBA", (640, 200), (10, 20, 30, 0)), 320)
    assert array.shape == (320, 320, 3)
    assert array.dtype == np.uint8
    assert tuple(array[0, 0]) == (10, 20, 30)


def brightness_batch() -> np.ndarray:
    photo = model_input(images.photo_image("chelsea"), 320).astype(np.float64)
    dark = (photo * 60 / 255).astype(np.uint8)  # peak ~60
    bright = photo.astype(np.uint8)  # peak 255
    black = np.zeros_like(bright)
    grey = np.full_like(bright, 128)
    return np.stack([dark, bright, black, grey])


@pytest.mark.parametrize("name", ["u2netp", "isnet-general-use", "isnet-anime"])
def test_normalising_a_batch_equals_normalising_each_image(name: str) -> None:
    spec = get_spec(name)
    batch = brightness_batch()
    together = normalize(batch, spec)
    assert together.shape == (4, 3, 320, 320)
    assert together.dtype == np.float32
    for index in range(len(batch)):
        alone = normalize(batch[index : index + 1], spec)
        assert np.array_equal(together[index], alone[0]), f"image {index}"


def test_normalisation_scales_each_image_by_its_own_peak() -> None:
    batch = brightness_batch()
    normalised = normalize(batch, U2NETP).astype(np.float64)
    mean = np.array(U2NETP.mean).reshape(1, 3, 1, 1)
    std = np.array(U2NETP.std).reshape(1, 3, 1, 1)
    scaled = normalised * std + mean  # back to pixel / peak
    assert np.isfinite(normalised).all()
    for index in (0, 1, 3):  # dark (peak ~60), bright (peak 255), flat grey: peak -> 1.0
        assert abs(scaled[index].max() - 1.0) < 1e-5, index
    assert np.allclose(scaled[2], 0.0, atol=1e-5)  # black stays 0, no division by zero
    assert np.allclose(scaled[3], 1.0, atol=1e-5)  # flat grey is all peak


def test_normalisation_matches_rembgs_formula_for_one_image() -> None:
    image = model_input(images.photo_image("rocket"), 320)
    pixels = image.astype(np.float64) / max(image.max(), 1e-6)
    expected = np.stack(
        [(pixels[:, :, c] - U2NETP.mean[c]) / U2NETP.std[c] for c in range(3)]
    ).astype(np.float32)
    assert np.allclose(normalize(image[None], U2NETP)[0], expected, atol=1e-6)


def test_to_masks_stretches_each_prediction_on_its_own() -> None:
    low_range = np.linspace(0.2, 0.4, 100, dtype=np.float32).reshape(1, 10, 10)
    full_range = np.linspace(0.0, 1.0, 100, dtype=np.float32).reshape(1, 10, 10)
    tiny = np.linspace(0.001, 0.002, 100, dtype=np.float32).reshape(1, 10, 10)
    masks = to_masks(np.concatenate([low_range, full_range, tiny]))
    assert masks.dtype == np.uint8
    for mask in masks:
        assert mask.min() == 0
        assert mask.max() == 255
    assert np.array_equal(masks[0], masks[1])


def test_to_masks_of_a_constant_prediction_is_zero_without_nan() -> None:
    constant = np.full((2, 8, 8), 0.7, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from a 0/0
        with np.errstate(all="raise"):
            masks = to_masks(constant)
    assert masks.dtype == np.uint8
    assert not masks.any()


def test_to_masks_mixes_constant_and_varying_images() -> None:
    varying = np.linspace(0, 1, 64, dtype=np.float32).reshape(1, 8, 8)
    constant = np.full((1, 8, 8), 0.5, dtype=np.float32)
    masks = to_masks(np.concatenate([varying, constant]))
    assert masks[0].max() == 255
    assert not masks[1].any()


def test_to_masks_truncates_like_rembg() -> None:
    predictions = np.array([[[0.0, 0.5, 1.0, 0.999]]], dtype=np.float32)
    assert to_masks(predictions).tolist() == [[[0, 127, 255, 254]]]


# --- catalog -------------------------------------------------------------------------------


def test_get_spec_of_u2netp() -> None:
    spec = get_spec("u2netp")
    assert spec.input_size == 320
    assert spec.filename == "u2netp.onnx"
    assert spec.url.endswith("/u2netp.onnx")


@pytest.mark.parametrize("name", ["nope", "", "U2NETP", "u2netp.onnx", "birefnet-general"])
def test_get_spec_of_an_unknown_name_is_unknown_model(name: str) -> None:
    with pytest.raises(UnknownModel) as caught:
        get_spec(name)
    assert caught.value.name == name
    assert "u2netp" in str(caught.value)  # lists the known models


def test_catalog_entries_are_well_formed() -> None:
    for name, spec in CATALOG.items():
        assert spec.name == name
        assert len(spec.md5) == 32
        assert int(spec.md5, 16) >= 0
        assert spec.input_size in (320, 1024)


# --- sources (network sources replaced by failures) ----------------------------------------


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No download, no wheel, and a HOME of our own: only local files can be found."""

    def no_network(*_args: object, **_kwargs: object) -> Path:
        raise RuntimeError("network sources are disabled in tests")

    monkeypatch.setattr(sources, "_download", no_network)
    monkeypatch.setattr(sources, "_extract_from_wheel", no_network)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("U2NET_HOME", raising=False)
    return home


GOOD = b"pretend this is an onnx file"
BAD = b"something else entirely"
TINY = ModelSpec("tiny-test-model", hashlib.md5(GOOD).hexdigest(), 320)


def write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_md5_of(tmp_path: Path) -> None:
    assert sources.md5_of(write(tmp_path / "f", GOOD)) == hashlib.md5(GOOD).hexdigest()


def test_local_file_with_the_right_md5_wins(offline: Path, tmp_path: Path) -> None:
    local = write(tmp_path / "mine.onnx", GOOD)
    cache = tmp_path / "cache"
    write(cache / TINY.filename, GOOD)  # also valid, but comes later
    found = sources.find_model_file(TINY, local_path=local, u2net_home=cache)
    assert found.path == local
    assert found.source.startswith("local file")
    assert found.md5 == TINY.md5


def test_wrong_md5_is_skipped_when_verifying(offline: Path, tmp_path: Path) -> None:
    local = write(tmp_path / "mine.onnx", BAD)
    cache = tmp_path / "cache"
    cached = write(cache / TINY.filename, GOOD)
    found = sources.find_model_file(TINY, local_path=local, u2net_home=cache)
    assert found.path == cached
    assert found.source.startswith("rembg cache")


def test_wrong_md5_everywhere_is_not_found(offline: Path, tmp_path: Path) -> None:
    local = write(tmp_path / "mine.onnx", BAD)
    cache = tmp_path / "cache"
    write(cache / TINY.filename, BAD)
    with pytest.raises(sources.ModelFileNotFound):
        sources.find_model_file(TINY, local_path=local, u2net_home=cache)


def test_wrong_md5_is_accepted_without_verification(offline: Path, tmp_path: Path) -> None:
    local = write(tmp_path / "mine.onnx", BAD)
    found = sources.find_model_file(
        TINY, local_path=local, u2net_home=tmp_path / "empty", verify=False
    )
    assert found.path == local
    assert found.md5 == hashlib.md5(BAD).hexdigest()


def test_missing_local_file_falls_through_to_the_cache(offline: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cached = write(cache / "models" / TINY.name / TINY.filename, GOOD)
    found = sources.find_model_file(TINY, local_path=tmp_path / "absent.onnx", u2net_home=cache)
    assert found.path == cached


def test_a_directory_is_not_a_model_file(offline: Path, tmp_path: Path) -> None:
    folder = tmp_path / "folder.onnx"
    folder.mkdir()
    with pytest.raises(sources.ModelFileNotFound):
        sources.find_model_file(
            TINY, local_path=folder, u2net_home=tmp_path / "empty", verify=False
        )


def test_default_cache_is_under_home(offline: Path) -> None:
    cached = write(offline / ".u2net" / TINY.filename, GOOD)
    assert sources.find_model_file(TINY).path == cached


def test_rembg_models_folder_under_home(offline: Path, tmp_path: Path) -> None:
    cached = write(offline / ".rembg" / "models" / TINY.name / TINY.filename, GOOD)
    assert sources.find_model_file(TINY, u2net_home=tmp_path / "empty").path == cached


def test_cache_candidates_honour_u2net_home(tmp_path: Path) -> None:
    home = tmp_path / "custom-home"
    candidates = sources.cache_candidates(U2NETP, home)
    assert candidates[0] == home / "u2netp.onnx"
    assert candidates[1] == home / "models" / "u2netp" / "u2netp.onnx"
    assert all(candidate.name == "u2netp.onnx" for candidate in candidates)


def test_cache_candidates_default_to_dot_u2net(offline: Path) -> None:
    assert sources.cache_candidates(U2NETP, None)[0] == offline / ".u2net" / "u2netp.onnx"


def test_the_original_u2netp_file_matches_the_catalogs_md5(
    original_model_path: Path, offline: Path
) -> None:
    found = sources.find_model_file(
        U2NETP, local_path=original_model_path, u2net_home=offline / "empty"
    )
    assert found.md5 == U2NETP.md5
    assert found.path == original_model_path


@pytest.mark.slow
def test_runs_of_one_give_the_same_masks_as_one_run(
    stored_model_path: Path, dynamic_session: SegmentationSession
) -> None:
    batch = photo_batch(3)
    one_by_one = SegmentationSession(stored_model_path, U2NETP, run_batch=1).predict(batch)
    np.testing.assert_array_equal(one_by_one, dynamic_session.predict(batch))


@pytest.mark.parametrize("count", [1, 2, 5])
def test_parallel_single_thread_runs_give_the_same_masks_in_order(
    stored_model_path: Path, count: int
) -> None:
    batch = photo_batch(count)
    one_run = SegmentationSession(stored_model_path, U2NETP, threads=2).predict(batch)
    side_by_side = SegmentationSession(
        stored_model_path, U2NETP, threads=2, parallel_runs=2
    ).predict(batch)
    assert side_by_side.shape == one_run.shape == (count, 320, 320)
    assert np.abs(side_by_side.astype(int) - one_run.astype(int)).max() <= 1
