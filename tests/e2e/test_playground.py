"""The browser playground (playground/) in a real Chromium against real `bentoml serve`s.

Three servers: the session's `server` (generous limits), and two of this module's, each started
on first use: one /remove-background an hour; `API_KEYS=secret-key`. Every test gets a fresh
browser context (no shared sessionStorage). A successful run leaves a screenshot in
test-artifacts/playground.png; with PLAYGROUND_DOCS_SCREENSHOT=1 it also rewrites
docs/playground.png (small, quantized).
"""

from __future__ import annotations

import base64
import io
import math
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.e2e.playwright_browser import INSTALL_HINT, chromium
from tests.e2e.server import ROOT, BentoServer
from tests.images import RED, encode, photo

try:
    from playwright.sync_api import Browser, Page, Request, Response, expect
except ImportError as missing:  # fail loudly: CI must run these tests, never skip them
    raise ImportError(f"Playwright for Python is missing: {INSTALL_HINT}") from missing

pytestmark = pytest.mark.slow

API_KEY = "secret-key"
ARTIFACT = ROOT / "test-artifacts" / "playground.png"
DOCS_SCREENSHOT = ROOT / "docs" / "playground.png"
DOCS_MAX_BYTES = 150_000
VIEWPORT = {"width": 1200, "height": 820}
SCALE = re.compile(r"^Scale")  # not "Mask only (the greyscale alpha mask)"
READ_BLOB_JS = """async (selector) => {
  const response = await fetch(document.querySelector(selector).src);
  const bytes = new Uint8Array(await response.arrayBuffer());
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
}"""
# The shown result's top-left pixel as [r, g, b, a], drawn on a canvas in the page.
CORNER_PIXEL_JS = """(selector) => {
  const img = document.querySelector(selector);
  const canvas = Object.assign(document.createElement("canvas"),
                               { width: img.naturalWidth, height: img.naturalHeight });
  const context = canvas.getContext("2d");
  context.drawImage(img, 0, 0);
  return Array.from(context.getImageData(0, 0, 1, 1).data);
}"""


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as running:
        yield running


def _serve(tmp_path_factory: pytest.TempPathFactory, **env: str) -> Iterator[BentoServer]:
    with BentoServer(tmp_path_factory.mktemp("playground"), env=env) as running:
        yield running


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BentoServer]:
    yield from _serve(tmp_path_factory, RATE_LIMIT_REMOVE_BG_PER_HOUR="1")


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BentoServer]:
    yield from _serve(tmp_path_factory, API_KEYS=API_KEY)


@pytest.fixture(scope="module")
def photo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("inputs") / "chelsea.jpg"
    path.write_bytes(photo("chelsea", "JPEG"))
    return path


@pytest.fixture(scope="module")
def red_background(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("inputs") / "red.png"
    path.write_bytes(encode(Image.new("RGB", (64, 48), RED), "PNG"))
    return path


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


# --- helpers -------------------------------------------------------------------------------


def open_playground(page: Page, server: BentoServer, image: Path | None = None) -> None:
    # Chromium reports no post data for a body holding a File (playwright#6479) unless the
    # request is intercepted: then the multipart body is there, the file's bytes left out.
    page.route("**/remove-background", lambda route: route.continue_())
    page.goto(f"{server.url}/playground/")
    if image is not None:
        page.locator("#file").set_input_files(image)


def submit(page: Page, press_enter_in: str | None = None) -> Response:
    """Start a removal (button click, or Enter in a field) and return its HTTP response once
    the page has finished showing it."""

    def is_removal(response: Response) -> bool:
        return response.url.endswith("/remove-background") and response.request.method == "POST"

    with page.expect_response(is_removal) as info:
        if press_enter_in:
            page.locator(press_enter_in).press("Enter")
        else:
            page.get_by_role("button", name="Remove background").click()
    expect(page.get_by_role("button", name="Remove background")).to_be_enabled()
    return info.value


def form_fields(request: Request) -> dict[str, str]:
    """The multipart body's fields: name -> value (an upload's value is its file name)."""
    content_type = request.header_value("content-type") or ""
    boundary = content_type.split("boundary=", 1)[1].encode()
    body = request.post_data_buffer
    assert body is not None, "no post data: was the request routed (see open_playground)?"
    fields = {}
    for part in body.split(b"--" + boundary)[1:-1]:
        head, _, value = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]*)"', head)
        filename = re.search(rb'filename="([^"]*)"', head)
        assert name, head
        text = filename[1] if filename else value.removesuffix(b"\r\n")
        fields[name[1].decode()] = text.decode()
    return fields


def shown_result(page: Page) -> bytes:
    """The bytes behind the result <img> (its blob: URL), read inside the page."""
    page.wait_for_function(
        "() => { const img = document.querySelector('#result-image');"
        " return img.complete && img.naturalWidth > 0; }"
    )
    return base64.b64decode(page.evaluate(READ_BLOB_JS, "#result-image"))


def error_text(page: Page) -> str:
    alert = page.get_by_role("alert")
    expect(alert).to_be_visible()
    return alert.inner_text()


# --- tests ---------------------------------------------------------------------------------


def test_a_photo_comes_back_cut_out_with_the_numbers_of_the_response(
    page: Page, server: BentoServer, photo_file: Path
) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    open_playground(page, server, photo_file)
    expect(page.get_by_role("img", name="The original image")).to_be_visible()

    response = submit(page)

    assert response.status == 200, response.text()
    assert form_fields(response.request) == {"file": "chelsea.jpg"}  # defaults send no option
    body, headers = response.body(), response.all_headers()
    expect(page.get_by_role("img", name="The image without its background")).to_be_visible()
    shown = shown_result(page)
    assert shown == body
    with Image.open(io.BytesIO(shown)) as result:
        assert result.mode == "RGBA"
        low, high = result.getchannel("A").getextrema()
        assert low < 255 and high == 255, "the result should be partly transparent"

    size, original = int(headers["x-optimized-size"]), int(headers["x-original-size"])
    assert original == photo_file.stat().st_size
    ratio = round((1 - size / original) * 100)
    expect(page.locator("#stat-size")).to_contain_text(f"({size:,} bytes)")
    expect(page.locator("#stat-original")).to_contain_text(f"({original:,} bytes)")
    expect(page.locator("#stat-ratio")).to_have_text(re.compile(rf"^{ratio}% \("))
    expect(page.locator("#stat-dimensions")).to_have_text(
        f"{headers['x-image-width']} × {headers['x-image-height']} px"
    )
    expect(page.locator("#stat-time")).to_contain_text(
        f"{headers['x-processing-time-ms']} ms on the server"
    )
    # Server-Timing's stages and the cache outcome, as the response gave them.
    expect(page.locator("#stat-cache")).to_contain_text(headers["x-cache"])
    stages = [entry.split(";")[0].strip() for entry in headers["server-timing"].split(",")]
    for stage in stages:
        if stage not in ("total", "cache"):
            expect(page.locator("#stat-stages")).to_contain_text(stage)
    if headers["x-cache"] != "hit":
        expect(page.locator("#stat-stages")).to_contain_text("decode")
    expect(page.locator("#rate")).to_contain_text(
        f"{headers['x-ratelimit-remaining']} of {headers['x-ratelimit-limit']} requests left"
    )
    expect(page.locator("#rate")).to_contain_text("resets at")
    outside = [url for url in requested if not url.startswith((server.url, "blob:", "data:"))]
    assert not outside, f"the page must work on a closed network, but it fetched {outside}"


def save_screenshots(page: Page) -> None:
    ARTIFACT.parent.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACT, full_page=True)
    if os.environ.get("PLAYGROUND_DOCS_SCREENSHOT"):
        with Image.open(ARTIFACT) as shot:
            small = shot.convert("RGB").resize((shot.width * 3 // 4, shot.height * 3 // 4))
        small.quantize(colors=96, method=Image.Quantize.MEDIANCUT).save(
            DOCS_SCREENSHOT, optimize=True
        )
        assert DOCS_SCREENSHOT.stat().st_size < DOCS_MAX_BYTES


OPTIONS: dict[str, tuple[Callable[[Page], object], dict[str, str]]] = {
    "format": (lambda page: page.get_by_label("Format").select_option("WEBP"), {"format": "WEBP"}),
    "quality": (lambda page: page.get_by_label("Quality").fill("55"), {"quality": "55"}),
    "max_width": (lambda page: page.get_by_label("Max width").fill("300"), {"max_width": "300"}),
    "max_height": (lambda page: page.get_by_label("Max height").fill("200"), {"max_height": "200"}),
    "preset": (
        lambda page: page.get_by_label("Preset").select_option("thumbnail"),
        {"preset": "thumbnail"},
    ),
    "bg_color": (
        lambda page: (
            page.get_by_label("Colour", exact=True).check(),
            page.get_by_label("Background colour").fill("#ff8800"),
        ),
        {"bg_color": "#ff8800"},
    ),
    "crop": (
        lambda page: (
            page.get_by_label("Crop to the subject").check(),
            page.get_by_label("Crop margin").fill("10%"),
        ),
        {"crop": "true", "crop_margin": "10%"},
    ),
    "only_mask": (lambda page: page.get_by_label("Mask only").check(), {"only_mask": "true"}),
    "canvas": (lambda page: page.get_by_label("Canvas").fill("400x300"), {"canvas": "400x300"}),
    "scale": (lambda page: page.get_by_label(SCALE).fill("80"), {"scale": "80%"}),
    "position": (
        lambda page: page.get_by_label("Position").fill("25% 75%"),
        {"position": "25% 75%"},
    ),
    "shadow": (
        lambda page: (
            page.get_by_label("Shadow", exact=True).select_option("drop"),
            page.get_by_label("Shadow opacity").fill("70"),
        ),
        {"shadow": "drop", "shadow_opacity": "70"},
    ),
    "edges": (
        lambda page: page.get_by_label("Edges").select_option("decontaminate"),
        {"edges": "decontaminate"},
    ),
}


@pytest.mark.parametrize("option", OPTIONS)
def test_each_option_goes_into_the_request(
    page: Page, server: BentoServer, photo_file: Path, option: str
) -> None:
    choose, sent = OPTIONS[option]
    open_playground(page, server, photo_file)
    if option == "preset":  # the list comes from GET /presets, with each preset's settings
        expect(page.locator("#preset option[value=thumbnail]")).to_have_text(
            "thumbnail — WEBP, quality 60, fits 300×300"
        )
    choose(page)

    response = submit(page)

    assert form_fields(response.request) == {"file": "chelsea.jpg", **sent}
    assert response.status == 200, response.text()
    assert response.all_headers()["x-optimization-used"] == "true"


def shown_size(page: Page) -> tuple[int, int]:
    shown_result(page)
    width, height = page.evaluate(
        "() => { const img = document.querySelector('#result-image');"
        " return [img.naturalWidth, img.naturalHeight]; }"
    )
    return width, height


def test_a_composition_comes_back_at_the_canvas_size(
    page: Page, server: BentoServer, photo_file: Path
) -> None:
    open_playground(page, server, photo_file)
    expect(page.get_by_label("Shadow opacity")).to_be_disabled()  # until a shadow is chosen
    expect(page.get_by_label("Position")).to_have_attribute("placeholder", "original")
    for label, wrong in (("Canvas", "400 by 300"), ("Position", "left")):  # caught in the page
        page.get_by_label(label).fill(wrong)
        assert page.get_by_label(label).evaluate("(input) => input.validity.patternMismatch")
        page.get_by_label(label).fill("")
    page.get_by_label("Canvas").fill("400x300")
    expect(page.get_by_label("Position")).to_have_attribute("placeholder", "center")
    expect(page.get_by_label(SCALE)).to_have_attribute("placeholder", "100")
    page.get_by_label(SCALE).fill("75")
    page.get_by_label("Shadow", exact=True).select_option("drop")
    page.get_by_label("Shadow opacity").fill("80")
    page.get_by_label("Edges").select_option("decontaminate")

    response = submit(page)

    assert response.status == 200, response.text()
    assert form_fields(response.request) == {
        "file": "chelsea.jpg",
        "canvas": "400x300",
        "scale": "75%",
        "shadow": "drop",
        "shadow_opacity": "80",
        "edges": "decontaminate",
    }
    assert shown_size(page) == (400, 300)
    expect(page.locator("#stat-dimensions")).to_have_text("400 × 300 px")
    with Image.open(io.BytesIO(response.body())) as result:
        assert result.size == (400, 300)
        # The canvas around the subject stays transparent: no background was asked for.
        assert result.getpixel((0, 0))[3] == 0


def test_a_background_image_replaces_the_colour_and_fills_the_canvas(
    page: Page, server: BentoServer, photo_file: Path, red_background: Path
) -> None:
    open_playground(page, server, photo_file)
    page.get_by_label("Image", exact=True).check()
    page.get_by_role("button", name="Remove background").click()
    assert "Choose a background image" in error_text(page)  # and nothing was sent

    page.get_by_label("Colour", exact=True).check()
    expect(page.get_by_label("Background colour")).to_be_enabled()
    page.get_by_label("Background image").set_input_files(red_background)
    # Choosing the image makes it the background: the colour can no longer go with it.
    expect(page.get_by_label("Image", exact=True)).to_be_checked()
    expect(page.get_by_label("Colour", exact=True)).not_to_be_checked()
    expect(page.get_by_label("Background colour")).to_be_disabled()
    page.get_by_label("Canvas").fill("400x300")
    page.get_by_label(SCALE).fill("50")

    response = submit(page)

    assert form_fields(response.request) == {
        "file": "chelsea.jpg",
        "canvas": "400x300",
        "scale": "50%",
        "bg_image": "red.png",
    }
    assert response.status == 200, response.text()
    assert shown_size(page) == (400, 300)
    # The subject covers half the canvas, centred: the corner is the background's red.
    assert page.evaluate(CORNER_PIXEL_JS, "#result-image") == [*RED, 255]

    page.get_by_label("Colour", exact=True).check()  # back to a colour: the image stays out
    page.get_by_label("Background colour").fill("#0000ff")
    recoloured = submit(page)

    assert recoloured.status == 200, recoloured.text()
    assert form_fields(recoloured.request) == {
        "file": "chelsea.jpg",
        "canvas": "400x300",
        "scale": "50%",
        "bg_color": "#0000ff",
    }
    shown_result(page)
    assert page.evaluate(CORNER_PIXEL_JS, "#result-image") == [0, 0, 255, 255]


def test_a_file_that_is_not_an_image_gets_a_readable_415(
    page: Page, server: BentoServer, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list: milk, eggs\n")
    open_playground(page, server, notes)

    response = submit(page)

    assert response.status == 415
    text = error_text(page)
    assert '{"' not in text and "unsupported_media_type" not in text
    assert "That file is not an image the service can read." in text
    assert response.json()["details"] in text
    expect(page.get_by_role("img", name="The image without its background")).to_be_hidden()


def test_a_network_failure_and_a_too_large_image_read_as_sentences(
    page: Page, server: BentoServer, photo_file: Path
) -> None:
    open_playground(page, server, photo_file)
    page.route("**/remove-background", lambda route: route.abort("connectionrefused"))
    page.get_by_role("button", name="Remove background").click()
    assert "Could not reach the service." in error_text(page)

    too_large = {
        "error": "Payload too large",
        "code": "payload_too_large",
        "solution": "Send a smaller image",
        "details": "The body is over 16777216 bytes",
    }
    page.route("**/remove-background", lambda route: route.fulfill(status=413, json=too_large))
    page.get_by_role("button", name="Remove background").click()
    expect(page.get_by_role("alert")).to_contain_text("The image is too large for this server.")
    text = error_text(page)
    assert too_large["details"] in text and too_large["solution"] in text and '{"' not in text


def test_the_rate_limit_says_how_long_to_wait(
    page: Page, limited_server: BentoServer, photo_file: Path
) -> None:
    open_playground(page, limited_server, photo_file)
    assert submit(page).status == 200
    expect(page.locator("#rate")).to_contain_text("0 of 1 requests left")

    refused = submit(page)

    assert refused.status == 429
    minutes = math.ceil(int(refused.all_headers()["retry-after"]) / 60)
    text = error_text(page)
    assert f"Try again in {minutes} minutes." in text
    assert '{"' not in text


def test_an_api_key_is_asked_for_then_used(
    page: Page, keyed_server: BentoServer, photo_file: Path
) -> None:
    open_playground(page, keyed_server, photo_file)
    expect(page.locator("#preset-hint")).to_have_text("Type your API key to load the presets.")

    refused = submit(page)

    assert refused.status == 401
    assert "This server needs an API key" in error_text(page)

    page.get_by_label("API key").fill(API_KEY)
    accepted = submit(page, press_enter_in="#api-key")  # the keyboard submits the form too

    assert accepted.status == 200, accepted.text()
    assert accepted.request.header_value("x-api-key") == API_KEY
    expect(page.get_by_role("alert")).to_be_hidden()
    expect(page.locator("#preset option[value=thumbnail]")).to_have_count(1)  # reloaded
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []


def test_download_saves_the_bytes_the_api_returned(
    page: Page, server: BentoServer, photo_file: Path
) -> None:
    open_playground(page, server, photo_file)
    page.get_by_label("Format").select_option("WEBP")
    response = submit(page)
    assert response.status == 200

    with page.expect_download() as info:
        page.get_by_role("link", name="Download chelsea_no_bg.webp").click()

    download = info.value
    assert download.suggested_filename == "chelsea_no_bg.webp"
    assert Path(download.path()).read_bytes() == response.body()
    save_screenshots(page)
