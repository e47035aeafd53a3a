"""Make the README's before/after pictures with the service itself, over HTTP.

    .venv/bin/python scripts/readme_pictures.py                  # starts a `bentoml serve`
    .venv/bin/python scripts/readme_pictures.py --url http://localhost:3000 [--api-key KEY]

Photos: skimage's `coffee` (600x400) and `astronaut` (512x512), sent as JPEG q95 to
`/remove-background`. Writes into `--out` (docs/pictures by default), each WEBP under 150 KB:

- product-canvas.webp: the photo sent, and the answer to `preset=product&shadow=drop`;
- portrait-edges.webp: the answers to `bg_color=green` with `edges=keep` and with
  `edges=decontaminate`, whole and with the hair's edge enlarged 7x (nearest neighbour, so
  every pixel shown is one the service returned).

Without `--url` a server of this checkout is started on a free port (BentoML's model store
must hold u2netp: `python import_model.py`) and stopped at the end. Three requests are sent.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from contract.headers import API_KEY  # noqa: E402
from tests import images  # noqa: E402
from tests.e2e.server import BentoServer  # noqa: E402

MAX_BYTES = 150_000
PANEL = 560  # each panel's side: two panels and their gaps make a picture ~1200 px wide
GAP, LABEL_HEIGHT = 20, 30
PAGE, FRAME, INK = (244, 244, 244), (200, 200, 200), (30, 30, 30)
MARK = (255, 215, 0)  # the enlarged region, outlined on the whole picture
# The hair's upper left edge: left, top, right, bottom in astronaut's pixels, 80 px -> 560
HAIR = (150, 20, 230, 100)
ENLARGED = PANEL // (HAIR[2] - HAIR[0])
WEBP_QUALITIES = (85, 80, 75, 70, 65, 60)
TIMEOUT_S = 120


@dataclass(frozen=True)
class Panel:
    image: Image.Image
    label: str


def remove_background(client: httpx.Client, photo: bytes, options: dict[str, str]) -> Image.Image:
    files = {"file": ("photo.jpg", photo, "image/jpeg")}
    response = client.post("/remove-background", files=files, data=options)
    if response.status_code != 200:
        raise SystemExit(f"{options}: {response.status_code} {response.text}")
    return Image.open(io.BytesIO(response.content)).convert("RGB")


def fit(image: Image.Image, resample: Image.Resampling = Image.Resampling.LANCZOS) -> Image.Image:
    """The image scaled so that its larger side is PANEL, centred on a PANEL square."""
    factor = PANEL / max(image.size)
    size = (round(image.width * factor), round(image.height * factor))
    square = Image.new("RGB", (PANEL, PANEL), PAGE)
    square.paste(image.resize(size, resample), ((PANEL - size[0]) // 2, (PANEL - size[1]) // 2))
    return square


def sheet(rows: list[list[Panel]]) -> Image.Image:
    """Panels in a grid, each framed, its label above it."""
    columns = max(len(row) for row in rows)
    cell = PANEL + LABEL_HEIGHT
    picture = Image.new(
        "RGB", (GAP + columns * (PANEL + GAP), GAP + len(rows) * (cell + GAP)), PAGE
    )
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=18)
    for r, row in enumerate(rows):
        for c, panel in enumerate(row):
            x, y = GAP + c * (PANEL + GAP), GAP + r * (cell + GAP)
            draw.text((x, y + 4), panel.label, fill=INK, font=font)
            picture.paste(panel.image, (x, y + LABEL_HEIGHT))
            box = (x - 1, y + LABEL_HEIGHT - 1, x + PANEL, y + LABEL_HEIGHT + PANEL)
            draw.rectangle(box, outline=FRAME)
    return picture


def product_canvas(client: httpx.Client) -> Image.Image:
    photo = images.photo("coffee", "JPEG", quality=95)
    sent = Image.open(io.BytesIO(photo))
    product = remove_background(client, photo, {"preset": "product", "shadow": "drop"})
    answer = f"preset=product, shadow=drop ({product.width}x{product.height})"
    return sheet(
        [
            [
                Panel(fit(sent), f"photo sent ({sent.width}x{sent.height})"),
                Panel(fit(product), answer),
            ]
        ]
    )


def portrait_edges(client: httpx.Client) -> Image.Image:
    photo = images.photo("astronaut", "JPEG", quality=95)
    columns = []
    for edges in ("keep", "decontaminate"):
        result = remove_background(client, photo, {"bg_color": "green", "edges": edges})
        enlarged = fit(result.crop(HAIR), Image.Resampling.NEAREST)
        marked = result.copy()
        ImageDraw.Draw(marked).rectangle(HAIR, outline=MARK, width=2)
        columns.append(
            (
                Panel(fit(marked), f"bg_color=green, edges={edges}"),
                Panel(enlarged, f"edges={edges}, the marked edge enlarged {ENLARGED}x"),
            )
        )
    return sheet([[whole for whole, _ in columns], [crop for _, crop in columns]])


def save_webp(picture: Image.Image, path: Path) -> int:
    """Write the best WEBP quality that stays under MAX_BYTES; its size in bytes."""
    for quality in WEBP_QUALITIES:
        buffer = io.BytesIO()
        picture.save(buffer, "WEBP", quality=quality, method=6)
        if buffer.tell() < MAX_BYTES:
            path.write_bytes(buffer.getvalue())
            return buffer.tell()
    raise SystemExit(f"{path.name}: over {MAX_BYTES} bytes even at WEBP q{WEBP_QUALITIES[-1]}")


@contextmanager
def service(url: str | None) -> Iterator[str]:
    """The given server's URL, or that of a server of this checkout started for the run."""
    if url:
        yield url.rstrip("/")
        return
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    with tempfile.TemporaryDirectory(prefix="readme-pictures-") as scratch:
        print("starting bentoml serve ...", file=sys.stderr, flush=True)
        with BentoServer(Path(scratch)) as server:
            yield server.url


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server (default: start one of this checkout)")
    parser.add_argument("--api-key", help="sent as X-API-Key, for a server with API_KEYS")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "pictures")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    headers = {API_KEY: args.api_key} if args.api_key else {}
    makers = {"product-canvas.webp": product_canvas, "portrait-edges.webp": portrait_edges}
    with (
        service(args.url) as url,
        httpx.Client(base_url=url, headers=headers, timeout=TIMEOUT_S) as client,
    ):
        for name, make in makers.items():
            picture = make(client)
            size = save_webp(picture, args.out / name)
            print(f"{args.out / name}: {picture.width}x{picture.height}, {size / 1000:.0f} kB")


if __name__ == "__main__":
    main()
