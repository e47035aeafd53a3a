"""The `bg-remover` command line against the whole HTTP API served in process and the real
model."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests import images
from tests.integration.api_server import InProcessServer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
RATE_LIMIT = 3
CLI_TIMEOUT_S = 600
CANVAS = ["--canvas", "1000x1000", "--scale", "85%"]
SUBJECT_ALPHA = 16  # the subject's box: alpha above this (docs/api.md, "Composition")


def write_photos(folder: Path) -> list[Path]:
    """The four skimage photos in JPEG, PNG and WEBP: JPEGs at the top, the others in
    sub-folders `png/` and `webp/` (so --recursive and sub-paths are exercised)."""
    written = []
    for fmt, ext in FORMATS.items():
        target = folder if fmt == "JPEG" else folder / ext
        target.mkdir(parents=True, exist_ok=True)
        for name in images.PHOTO_NAMES:
            path = target / f"{name}-{ext}.{ext}"
            path.write_bytes(images.photo(name, fmt))
            written.append(path)
    return written


def run_cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m bg_remover_client.cli` from the test's interpreter (the project's venv)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BG_REMOVER_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["COLUMNS"] = "200"  # rich wraps a non-terminal at 80 columns otherwise
    return subprocess.run(
        [sys.executable, "-m", "bg_remover_client.cli", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def test_folder_to_webp_with_alpha(server: InProcessServer, tmp_path: Path) -> None:
    inputs = write_photos(tmp_path / "photos")
    assert len(inputs) >= 10

    done = run_cli(
        "photos",
        "--recursive",
        "--url",
        server.url,
        "--concurrency",
        "3",
        "--format",
        "webp",
        "--output-dir",
        "out",
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stdout + done.stderr + server.log()
    outputs = sorted((tmp_path / "out").rglob("*_no_bg.webp"))
    assert len(outputs) == len(inputs)
    assert {p.parent.name for p in outputs} == {"out", "png", "webp"}  # sub-paths kept
    for path in outputs:
        with Image.open(path) as image:
            assert image.format == "WEBP"
            assert image.mode == "RGBA", path
            assert image.getchannel("A").getextrema()[0] < 255, f"{path} has no transparency"
    assert "Summary" in done.stdout
    assert f"Processed    {len(inputs)}" in done.stdout
    assert "Failed       0" in done.stdout
    assert "Traceback" not in done.stderr


def test_second_run_skips_everything(server: InProcessServer, tmp_path: Path) -> None:
    write_photos(tmp_path / "photos")
    first = run_cli("photos", "--url", server.url, cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    outputs = sorted((tmp_path / "photos").glob("*_no_bg.png"))
    assert len(outputs) == len(images.PHOTO_NAMES)

    again = run_cli("photos", "--url", server.url, cwd=tmp_path)
    assert again.returncode == 0
    assert f"Skipped      {len(outputs)}" in again.stdout
    assert "Processed    0" in again.stdout


def test_a_bad_file_fails_alone(server: InProcessServer, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.jpg").write_bytes(images.photo("chelsea", "JPEG"))
    (folder / "broken.png").write_bytes(images.truncated_png())

    done = run_cli("mixed", "--url", server.url, cwd=tmp_path)

    assert done.returncode == 1
    assert (folder / "good_no_bg.png").exists()
    assert "Processed    1" in done.stdout and "Failed       1" in done.stdout
    assert "broken.png: HTTP 400 invalid_image" in done.stdout


def compose(server: InProcessServer, tmp_path: Path, out: str, *options: str) -> Image.Image:
    """The cut-out of the coffee cup the CLI wrote into `out` with these options."""
    photo = tmp_path / "cup.jpg"
    if not photo.exists():
        photo.write_bytes(images.photo("coffee", "JPEG"))
    done = run_cli(photo, "--url", server.url, "--output-dir", out, *options, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr + server.log()
    (written,) = (tmp_path / out).iterdir()
    image = Image.open(written)
    image.load()
    return image


def test_composition_options_scale_and_place_the_subject_on_a_canvas(
    server: InProcessServer, tmp_path: Path
) -> None:
    plain = compose(server, tmp_path, "plain", *CANVAS)
    assert (plain.format, plain.mode, plain.size) == ("PNG", "RGBA", (1000, 1000))
    left, top, right, bottom = (
        plain.getchannel("A").point(lambda a: 255 if a > SUBJECT_ALPHA else 0).getbbox()
    )
    assert max(right - left, bottom - top) == pytest.approx(850, abs=3)
    assert ((left + right) / 2, (top + bottom) / 2) == pytest.approx((500, 500), abs=3)

    # The documented product shot: white canvas, drop shadow, JPEG.
    product = compose(
        server,
        tmp_path,
        "product",
        *CANVAS,
        "--bg-color",
        "white",
        "--shadow",
        "drop",
        "--format",
        "jpeg",
    )
    assert (product.format, product.mode, product.size) == ("JPEG", "RGB", (1000, 1000))
    outside = np.asarray(plain.getchannel("A")) == 0
    grey = np.asarray(product.convert("L")).astype(int)
    assert grey[:20, :20].min() >= 250  # white where neither subject nor shadow reaches
    shadowed = outside & (grey < 230)  # around the subject only the shadow darkens the white
    assert shadowed.sum() > 1000
    rows, cols = np.nonzero(shadowed)
    assert rows.mean() > (top + bottom) / 2 and cols.mean() > (left + right) / 2  # down, right


def test_decontaminated_edges_change_colours_not_the_matte(
    server: InProcessServer, tmp_path: Path
) -> None:
    kept = np.asarray(compose(server, tmp_path, "keep", *CANVAS, "--edges", "keep"))
    cleaned = np.asarray(compose(server, tmp_path, "clean", *CANVAS, "--edges", "decontaminate"))
    assert np.array_equal(kept[..., 3], cleaned[..., 3])
    soft = (kept[..., 3] > 0) & (kept[..., 3] < 255)
    assert soft.any()
    assert not np.array_equal(kept[soft][:, :3], cleaned[soft][:, :3])
    solid = kept[..., 3] == 255
    assert np.array_equal(kept[solid], cleaned[solid])


@pytest.mark.parametrize(
    ("options", "details"),
    [
        (["--shadow", "purple"], "(shadow must be one of none, drop; got 'purple')"),
        (["--bg-image", "letter.txt"], "(bg_image is not a usable image: "),
    ],
)
def test_a_composition_value_the_server_refuses_is_reported_with_its_error(
    server: InProcessServer, tmp_path: Path, options: list[str], details: str
) -> None:
    (tmp_path / "cup.jpg").write_bytes(images.photo("coffee", "JPEG"))
    (tmp_path / "letter.txt").write_bytes(images.text_file())
    done = run_cli("cup.jpg", "--url", server.url, *options, cwd=tmp_path)
    assert done.returncode == 1
    (failure,) = [line for line in done.stdout.splitlines() if "cup.jpg:" in line]
    assert "HTTP 400 invalid_parameter: Invalid optimization parameters " + details in failure
    assert "Traceback" not in done.stderr


def test_one_background_image_behind_every_input(server: InProcessServer, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("chelsea", "coffee"):
        (folder / f"{name}.jpg").write_bytes(images.photo(name, "JPEG"))
    background = tmp_path / "red.png"
    background.write_bytes(images.encode(Image.new("RGB", (200, 100), images.RED), "PNG"))

    done = run_cli(
        "photos",
        "--url",
        server.url,
        "--canvas",
        "400x300",
        "--bg-image",
        background,
        "--format",
        "png",
        "--output-dir",
        "out",
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stdout + done.stderr + server.log()
    outputs = sorted((tmp_path / "out").glob("*_no_bg.png"))
    assert [p.name for p in outputs] == ["chelsea_no_bg.png", "coffee_no_bg.png"]
    for path in outputs:
        with Image.open(path) as image:
            assert image.size == (400, 300)
            assert image.convert("RGBA").getpixel((2, 2)) == (*images.RED, 255), path


def test_rate_limit_beyond_max_wait_fails_fast(tmp_path: Path) -> None:
    """A used-up hourly budget asks to wait ~an hour: the client gives up on those files
    instead of sleeping (or hammering the server), and says why."""
    folder = tmp_path / "five"
    folder.mkdir()
    for n in range(5):
        (folder / f"cat{n}.jpg").write_bytes(images.photo("chelsea", "JPEG"))

    limits = {"RATE_LIMIT_REMOVE_BG_PER_HOUR": str(RATE_LIMIT)}
    with InProcessServer(tmp_path, env=limits) as server:
        started = time.monotonic()
        done = run_cli(
            "five",
            "--url",
            server.url,
            "--concurrency",
            "1",
            "--retries",
            "2",
            "--max-wait",
            "60",
            cwd=tmp_path,
        )
        elapsed = time.monotonic() - started

    assert done.returncode == 1, done.stdout + done.stderr
    assert len(list(folder.glob("*_no_bg.png"))) == RATE_LIMIT
    assert f"Processed    {RATE_LIMIT}" in done.stdout
    assert f"Failed       {5 - RATE_LIMIT}" in done.stdout
    failures = [line for line in done.stdout.splitlines() if "429 rate_limited" in line]
    assert len(failures) == 5 - RATE_LIMIT
    assert all("--max-wait 60 s: giving up" in line for line in failures)
    assert all(line.strip().startswith("five/cat") for line in failures)  # names the file
    assert elapsed < 60


def test_console_script_is_declared_and_works_when_installed(tmp_path: Path) -> None:
    """`pip install -e .` installs `bg-remover`; when this venv has it, it runs."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["bg-remover"] == "bg_remover_client.cli:main"
    assert project["tool"]["setuptools"]["packages"] == ["bg_remover_client"]
    script = Path(sys.executable).with_name("bg-remover")
    if script.exists():
        done = subprocess.run(
            [str(script), "--help"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "--max-wait" in done.stdout
    done = run_cli(tmp_path / "missing.jpg", cwd=tmp_path)
    assert done.returncode == 2
    assert "no such file or folder" in done.stderr
