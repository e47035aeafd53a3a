"""bg_remover_client.cli end to end against a fake server (httpx.MockTransport): exit codes,
option → form field mapping, skipping, output placement and the summary."""

from __future__ import annotations

import email.parser
import email.policy
import functools
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from bg_remover_client import cli
from bg_remover_client.api import RetryPolicy
from optimizer import PRESETS

EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "JPG": "jpg", "WEBP": "webp", "AVIF": "avif"}


def parse_multipart(request: httpx.Request) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    """(form fields, files) of a multipart/form-data request."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.read())
    fields: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if part.get_filename() is not None:
            files[name] = (part.get_filename(), payload)
        else:
            fields[name] = payload.decode()
    return fields, files


class FakeService:
    """Echoes `cut:<input bytes>` named like the real service; fails files named `bad*`."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.fields: list[dict[str, str]] = []
        self.files: list[dict[str, tuple[str, bytes]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/presets":  # the service's own table
            return httpx.Response(
                200, json={name: preset.as_options() for name, preset in PRESETS.items()}
            )
        self.requests.append(request)
        fields, files = parse_multipart(request)
        self.fields.append(fields)
        self.files.append(files)
        filename, data = files["file"]
        if filename.startswith("bad"):
            return httpx.Response(
                415,
                json={
                    "error": "Unsupported media type",
                    "code": "unsupported_media_type",
                    "details": "TIFF is not supported",
                },
            )
        stem = filename.rsplit(".", 1)[0]
        name = f"{stem}_no_bg.{EXTENSIONS[fields.get('format', 'PNG')]}"
        return httpx.Response(
            200, content=b"cut:" + data, headers={"content-disposition": disposition(name)}
        )


def disposition(name: str) -> str:
    if name.isascii():
        return f'attachment; filename="{name}"'
    return f"attachment; filename=\"image_no_bg.png\"; filename*=UTF-8''{quote(name)}"


@pytest.fixture
def service() -> FakeService:
    return FakeService()


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for name in ("a.jpg", "b.png", "sub/c.webp"):
        (folder / name).write_bytes(b"image " + name.encode() * 20)
    (folder / "readme.txt").write_text("not an image")
    return folder


def run(service: FakeService, *args: str | Path) -> int:
    return cli.main([str(arg) for arg in args], transport=httpx.MockTransport(service))


# --- exit codes --------------------------------------------------------------------------------


def test_all_succeed_exit_0_with_outputs_beside_inputs(
    service: FakeService, photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(service, photos, "--recursive") == cli.EXIT_OK
    assert (photos / "a_no_bg.png").read_bytes().startswith(b"cut:image a.jpg")
    assert (photos / "b_no_bg.png").exists()
    assert (photos / "sub" / "c_no_bg.png").exists()
    assert len(service.requests) == 3
    out = capsys.readouterr().out
    assert "Summary" in out
    assert "Processed    3" in out and "Failed       0" in out
    assert "Compression" in out and "Elapsed" in out


def test_a_failed_file_gives_exit_1_and_is_named_with_its_reason(
    service: FakeService, photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = photos / "bad.jpg"
    bad.write_bytes(b"II*\x00 tiff")
    assert run(service, photos) == cli.EXIT_FAILED
    out = capsys.readouterr().out
    assert "Processed    2" in out and "Failed       1" in out
    assert (
        f"{bad}: HTTP 415 unsupported_media_type: Unsupported media type (TIFF is not supported)"
    ) in out
    assert (photos / "a_no_bg.png").exists()  # one failure does not stop the others


@pytest.mark.parametrize(
    "args",
    [
        ["--format", "tiff"],
        ["--quality", "5"],
        ["--quality", "high"],
        ["--max-width", "99"],
        ["--max-height", "4001"],
        ["--concurrency", "0"],
        ["--retries", "-1"],
        ["--max-wait", "-1"],
        ["--timeout", "0"],
        ["--crop-margin", "lots"],
        ["--crop-margin", "1 2 3"],
        ["--url", "localhost:3000"],
        ["--bogus"],
    ],
)
def test_bad_options_are_usage_errors(
    service: FakeService, photos: Path, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(service, photos, *args) == cli.EXIT_USAGE
    assert "error:" in capsys.readouterr().err
    assert service.requests == []


def test_no_inputs_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == cli.EXIT_USAGE


def test_missing_input_is_a_usage_error(
    service: FakeService, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(service, tmp_path / "nope.jpg") == cli.EXIT_USAGE
    assert "no such file or folder" in capsys.readouterr().err


def test_folder_without_images_is_a_usage_error(
    service: FakeService, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    (empty / "deep").mkdir(parents=True)
    (empty / "deep" / "x.jpg").write_bytes(b"x")
    assert run(service, empty) == cli.EXIT_USAGE
    assert "--recursive" in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == cli.EXIT_OK
    text = capsys.readouterr().out
    for option in (
        "--url",
        "--api-key",
        "--output-dir",
        "--format",
        "--quality",
        "--max-width",
        "--max-height",
        "--preset",
        "--bg-color",
        "--crop",
        "--crop-margin",
        "--only-mask",
        "--model",
        "--scale",
        "--position",
        "--canvas",
        "--roi",
        "--bg-image",
        "--shadow",
        "--shadow-opacity",
        "--edges",
        "--concurrency",
        "--retries",
        "--max-wait",
        "--recursive",
        "--overwrite",
        "--timeout",
        "BG_REMOVER_API_KEY",
        "Exit codes",
        "Retry-After",
    ):
        assert option in text


# --- options and headers ------------------------------------------------------------------------


def test_cli_options_become_form_fields(service: FakeService, photos: Path) -> None:
    assert (
        run(
            service,
            photos / "a.jpg",
            "--format",
            "WebP",
            "--quality",
            "70",
            "--max-width",
            "800",
            "--max-height",
            "600",
            "--preset",
            "web",
            "--bg-color",
            "#00ff0080",
            "--crop",
            "--crop-margin",
            "5% 10px",
            "--only-mask",
            "--model",
            "u2netp",
        )
        == cli.EXIT_OK
    )
    assert service.fields == [
        {
            "format": "WEBP",
            "quality": "70",
            "max_width": "800",
            "max_height": "600",
            "preset": "web",
            "bg_color": "#00ff0080",
            "crop": "true",
            "crop_margin": "5% 10px",
            "only_mask": "true",
            "model": "u2netp",
        }
    ]
    assert (photos / "a_no_bg.webp").exists()


def test_no_options_send_no_fields(service: FakeService, photos: Path) -> None:
    run(service, photos / "a.jpg")
    assert service.fields == [{}]
    assert list(service.files[0]) == ["file"]


def test_composition_options_become_form_fields_and_the_background_a_file_part(
    service: FakeService, photos: Path, tmp_path: Path
) -> None:
    background = tmp_path / "beach.jpg"
    background.write_bytes(b"a beach")
    assert (
        run(
            service,
            photos / "a.jpg",
            photos / "b.png",
            "--scale",
            "85%",
            "--position",
            "50% 100%",
            "--canvas",
            "1000x1000",
            "--roi",
            "0 0 50% 100%",
            "--shadow",
            "drop",
            "--shadow-opacity",
            "35",
            "--edges",
            "decontaminate",
            "--bg-image",
            background,
        )
        == cli.EXIT_OK
    )
    composition = {
        "scale": "85%",
        "position": "50% 100%",
        "canvas": "1000x1000",
        "roi": "0 0 50% 100%",
        "shadow": "drop",
        "shadow_opacity": "35",
        "edges": "decontaminate",
    }
    assert service.fields == [composition, composition]
    # One background, sent with every input.
    assert [files["bg_image"] for files in service.files] == [("beach.jpg", b"a beach")] * 2
    assert sorted(files["file"][0] for files in service.files) == ["a.jpg", "b.png"]


def test_a_background_image_replaces_a_presets_colour(
    service: FakeService, photos: Path, tmp_path: Path
) -> None:
    """Only an explicit --bg-color conflicts: `product`'s white gives way on the server."""
    background = tmp_path / "beach.jpg"
    background.write_bytes(b"a beach")
    assert run(service, photos / "a.jpg", "--preset", "product", "--bg-image", background) == 0
    assert service.fields == [{"preset": "product"}]
    assert service.files[0]["bg_image"] == ("beach.jpg", b"a beach")


@pytest.mark.parametrize("make", [lambda p: p / "missing.jpg", lambda p: p])
def test_an_unreadable_background_is_a_usage_error(
    service: FakeService,
    photos: Path,
    tmp_path: Path,
    make: Callable[[Path], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    background = make(tmp_path)
    assert run(service, photos / "a.jpg", "--bg-image", background) == cli.EXIT_USAGE
    assert f"argument --bg-image: cannot read '{background}'" in capsys.readouterr().err
    assert service.requests == []


def test_a_background_image_with_a_colour_is_refused_before_sending(
    service: FakeService, photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    background = tmp_path / "beach.jpg"
    background.write_bytes(b"a beach")
    args = ("--bg-image", background, "--bg-color", "white")
    assert run(service, photos / "a.jpg", *args) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "error: --bg-color and --bg-image cannot be used together: choose one" in err
    assert service.requests == []


def test_api_key_from_the_environment_and_the_url(
    service: FakeService, photos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BG_REMOVER_API_KEY", "from-env")
    run(service, photos / "a.jpg", "--url", "http://bg.example:8080/")
    request = service.requests[0]
    assert request.headers["x-api-key"] == "from-env"
    assert str(request.url) == "http://bg.example:8080/remove-background"
    run(service, photos / "b.png", "--api-key", "from-flag")
    assert service.requests[1].headers["x-api-key"] == "from-flag"


def test_no_api_key_header_without_a_key(
    service: FakeService, photos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BG_REMOVER_API_KEY", raising=False)
    run(service, photos / "a.jpg")
    assert "x-api-key" not in service.requests[0].headers


# --- files -----------------------------------------------------------------------------------


def test_output_dir_keeps_sub_paths(service: FakeService, photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(service, photos, "-r", "--format", "jpeg", "--output-dir", out) == cli.EXIT_OK
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "a_no_bg.jpg",
        "b_no_bg.jpg",
        "sub/c_no_bg.jpg",
    ]
    assert not (photos / "a_no_bg.jpg").exists()


def test_existing_outputs_are_skipped_unless_overwrite(
    service: FakeService, photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (photos / "a_no_bg.png").write_bytes(b"old")
    assert run(service, photos) == cli.EXIT_OK
    assert len(service.requests) == 1  # only b.png was sent
    assert (photos / "a_no_bg.png").read_bytes() == b"old"
    assert "Skipped      1" in capsys.readouterr().out

    assert run(service, photos, "--overwrite") == cli.EXIT_OK
    assert len(service.requests) == 3
    assert (photos / "a_no_bg.png").read_bytes().startswith(b"cut:")


def test_everything_skipped_sends_nothing_and_exits_0(service: FakeService, photos: Path) -> None:
    assert run(service, photos) == cli.EXIT_OK
    assert run(service, photos) == cli.EXIT_OK
    assert len(service.requests) == 2


def test_preset_decides_the_extension_for_skipping(service: FakeService, photos: Path) -> None:
    (photos / "a_no_bg.jpg").write_bytes(b"old")  # the `web` preset is JPEG
    run(service, photos / "a.jpg", "--preset", "web")
    assert service.requests == []


@pytest.mark.parametrize(
    ("preset", "extension"), [("thumbnail", "webp"), ("Social", "png"), ("unknown-preset", "png")]
)
def test_preset_format_comes_from_the_server(
    service: FakeService, photos: Path, preset: str, extension: str
) -> None:
    (photos / f"a_no_bg.{extension}").write_bytes(b"old")
    run(service, photos / "a.jpg", "--preset", preset)
    assert service.requests == []


def test_explicit_format_wins_over_the_preset(service: FakeService, photos: Path) -> None:
    (photos / "a_no_bg.avif").write_bytes(b"old")
    run(service, photos / "a.jpg", "--preset", "web", "--format", "avif")
    assert service.requests == []


def test_non_ascii_names_come_from_filename_star(service: FakeService, tmp_path: Path) -> None:
    source = tmp_path / "été.jpg"
    source.write_bytes(b"photo")
    assert run(service, source) == cli.EXIT_OK
    assert (tmp_path / "été_no_bg.png").read_bytes() == b"cut:photo"
    assert not (tmp_path / "image_no_bg.png").exists()


def test_concurrency_one_sends_in_order(service: FakeService, photos: Path) -> None:
    run(service, photos, "-r", "-c", "1")
    names = [parse_multipart(r)[1]["file"][0] for r in service.requests]
    assert names == ["a.jpg", "b.png", "c.webp"]


def test_unreachable_server_fails_each_file_after_retries(
    photos: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Backoff from 0 s: the retries happen, the test does not wait for them.
    monkeypatch.setattr(cli, "RetryPolicy", functools.partial(RetryPolicy, backoff_base=0))

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    code = cli.main([str(photos), "--retries", "2"], transport=httpx.MockTransport(refuse))
    captured = capsys.readouterr()
    assert code == cli.EXIT_FAILED
    assert (
        captured.out.count(
            "connection error (ConnectError: connection refused) (gave up after 3 attempts)"
        )
        == 2
    )
    assert "retry 1/2" in captured.err
