"""`bg-remover`: remove the background of many images through the service.

Exit codes: 0 every file succeeded (or was skipped), 1 a file failed, 2 usage error,
130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bg_remover_client import __version__
from bg_remover_client.api import FilePart, Options, RetryPolicy, Uploader, preset_format
from bg_remover_client.files import InputError, InputFile, discover, output_extension
from bg_remover_client.report import print_summary
from bg_remover_client.runner import Outcome, Plan, plan, run_jobs

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DEFAULT_URL = "http://localhost:3000"
URL_ENV, KEY_ENV = "BG_REMOVER_URL", "BG_REMOVER_API_KEY"
FORMATS = ("png", "jpeg", "jpg", "webp", "avif")
CONNECT_TIMEOUT_S = 10.0  # an unreachable server should fail fast even with a long --timeout

EPILOG = f"""\
Inputs are files and/or folders. A folder contributes its images by extension (jpg, jpeg,
png, webp, gif, bmp, avif; hidden files and earlier *_no_bg outputs excluded); --recursive
descends into sub-folders. Each result is written beside its input as <stem>_no_bg.<ext>
(the name the server sends in Content-Disposition), or into --output-dir, keeping the
sub-folders of a folder input. Existing outputs are skipped unless --overwrite.

Retries: 429 and 503 are retried after the server's Retry-After (all workers pause); a
Retry-After longer than --max-wait (a used-up hourly budget asks for up to an hour) fails
that file at once. Connection errors, timeouts, 502 and 504 are retried with exponential
backoff (1, 2, 4 ... 60 s). Other errors (400, 401, 413, 415 ...) are not retried.

Environment: {URL_ENV} (default for --url), {KEY_ENV} (default for --api-key).

Exit codes: 0 all files succeeded or were skipped, 1 at least one file failed,
2 usage error (bad option, missing input, no images found), 130 interrupted.

Examples:
  bg-remover photo.jpg
  bg-remover photos/ --recursive --format webp --output-dir cut-outs
  bg-remover shop/*.jpg --preset web --bg-color white --crop --crop-margin 5%
  bg-remover mug.jpg --canvas 1000x1000 --scale 85% --bg-color white --shadow drop --format jpeg
  bg-remover people/ --bg-image beach.jpg --edges decontaminate --format jpeg
  {KEY_ENV}=secret bg-remover --url https://bg.example.com scans/ --concurrency 8
"""


# --- argument types: bad values are usage errors (exit 2) before anything is sent ---------


def int_in_range(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"{low}-{high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
        return value

    return parse


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def crop_margin(text: str) -> str:
    """1, 2 or 4 values (CSS order), each pixels or a percentage."""
    values = text.split()
    if len(values) not in (1, 2, 4) or not all(re.fullmatch(r"\d+(px|%)?", v) for v in values):
        raise argparse.ArgumentTypeError(
            f"expected 1, 2 or 4 values, each pixels (12) or a percentage (5%), got {text!r}"
        )
    return " ".join(values)


def readable_file(text: str) -> FilePart:
    """The file's name and bytes, read once: the same background goes with every input."""
    path = Path(text)
    try:
        return path.name, path.read_bytes()
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {text!r}: {exc.strerror or exc}") from None


def http_url(text: str) -> str:
    if not re.match(r"https?://[^/]", text):
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// URL, got {text!r}")
    return text.rstrip("/")


# --- the parser ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bg-remover",
        description="Remove the background of images with a self-hosted background-removal\n"
        "service (POST /remove-background), several files at a time.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "inputs", nargs="+", type=Path, metavar="INPUT", help="image files and/or folders of images"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_server_arguments(parser.add_argument_group("server"))
    _add_processing_arguments(
        parser.add_argument_group(
            "processing options (sent as form fields; omitted ones use the server's defaults)"
        )
    )
    _add_composition_arguments(
        parser.add_argument_group(
            'composition (docs/api.md, "Composition"; the server checks the values)'
        )
    )
    _add_file_arguments(parser.add_argument_group("files"))
    _add_run_arguments(parser.add_argument_group("running"))
    return parser


def _add_server_arguments(group: argparse._ArgumentGroup) -> None:
    # An empty variable counts as unset, as it does for the service's settings.
    group.add_argument(
        "--url",
        type=http_url,
        default=os.environ.get(URL_ENV) or DEFAULT_URL,
        help=f"service base URL (default: ${URL_ENV} or {DEFAULT_URL})",
    )
    group.add_argument(
        "--api-key",
        metavar="KEY",
        default=os.environ.get(KEY_ENV) or None,
        help=f"sent as X-API-Key (default: ${KEY_ENV})",
    )
    group.add_argument(
        "--timeout",
        type=positive_float,
        default=120.0,
        metavar="S",
        help="seconds to wait for one response (default: 120)",
    )


def _add_processing_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--format",
        type=str.lower,
        choices=FORMATS,
        help="output format (server default: png; a preset may set it)",
    )
    group.add_argument(
        "--quality",
        type=int_in_range(10, 100),
        metavar="N",
        help="encoder quality 10-100 (server default: 80; 100 for png)",
    )
    group.add_argument(
        "--max-width",
        type=int_in_range(100, 4000),
        metavar="N",
        help="fit inside this width, 100-4000 px, never upscaled",
    )
    group.add_argument(
        "--max-height",
        type=int_in_range(100, 4000),
        metavar="N",
        help="fit inside this height, 100-4000 px, never upscaled",
    )
    group.add_argument(
        "--preset",
        metavar="NAME",
        help="web, social, email, thumbnail, mobile, desktop, archival, print "
        "(explicit options override it)",
    )
    group.add_argument(
        "--bg-color",
        metavar="C",
        help="background: #rgb, #rrggbb, #rrggbbaa or a CSS colour name "
        "(default: transparent; white for jpeg)",
    )
    group.add_argument("--crop", action="store_true", help="crop to the subject")
    group.add_argument(
        "--crop-margin",
        type=crop_margin,
        metavar="M",
        help="margin kept when cropping: 1, 2 or 4 values (CSS order), each pixels (20) or "
        'percent (5%%), e.g. "10 5%%"',
    )
    group.add_argument(
        "--only-mask", action="store_true", help="return the alpha mask as a greyscale image"
    )
    group.add_argument(
        "--model", metavar="NAME", help="segmentation model on the server (default: the served one)"
    )


def _add_composition_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--scale",
        metavar="S",
        help="the subject's larger side as a share of the canvas, 10%%-100%%, or original",
    )
    group.add_argument(
        "--position",
        metavar="P",
        help="where the subject goes: center, original, X%% or 'X%% Y%%' (0%% left/top)",
    )
    group.add_argument(
        "--canvas",
        metavar="WxH",
        help="a fixed output size, e.g. 1000x1000 (sides from 100 px to the server's maximum, "
        "4000 by default)",
    )
    group.add_argument(
        "--roi",
        metavar="BOX",
        help="look for the subject only in 'X1 Y1 X2 Y2', each Npx or N%%, e.g. '0 0 50%% 100%%'",
    )
    group.add_argument(
        "--bg-image",
        type=readable_file,
        metavar="FILE",
        help="a picture behind the subject, covering the canvas; the same for every input "
        "(not with --bg-color)",
    )
    group.add_argument("--shadow", metavar="none|drop", help="drop: a soft drop shadow")
    group.add_argument(
        "--shadow-opacity", metavar="N", help="the shadow's darkest alpha, 0-100 (default: 50)"
    )
    group.add_argument(
        "--edges",
        metavar="keep|decontaminate",
        help="decontaminate: clean the old background's colour out of the soft edges",
    )


def _add_file_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--output-dir",
        "-o",
        type=Path,
        metavar="DIR",
        help="write results here instead of beside the inputs",
    )
    group.add_argument(
        "--recursive",
        "-r",
        action="store_true",
        help="include images in sub-folders of folder inputs",
    )
    group.add_argument(
        "--overwrite",
        action="store_true",
        help="process files whose output already exists (default: skip them)",
    )


def _add_run_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--concurrency",
        "-c",
        type=int_in_range(1, 64),
        default=4,
        metavar="N",
        help="files in flight at once, 1-64 (default: 4)",
    )
    group.add_argument(
        "--retries",
        type=int_in_range(0),
        default=5,
        metavar="N",
        help="retries per file after the first attempt (default: 5)",
    )
    group.add_argument(
        "--max-wait",
        type=non_negative_float,
        default=300.0,
        metavar="S",
        help="longest Retry-After to wait for; a longer one fails the file (default: 300)",
    )


# --- from arguments to a run -----------------------------------------------------------------


def options_from(args: argparse.Namespace) -> Options:
    """Every option has the name of its argument (`--bg-color` is `bg_color`)."""
    return Options(**{option.name: getattr(args, option.name) for option in fields(Options)})


def make_client(
    args: argparse.Namespace, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    headers = {"User-Agent": f"bg-remover-cli/{__version__}"}
    if args.api_key:
        headers["X-API-Key"] = args.api_key
    return httpx.AsyncClient(
        base_url=args.url,
        headers=headers,
        transport=transport,
        timeout=httpx.Timeout(args.timeout, connect=min(CONNECT_TIMEOUT_S, args.timeout)),
        limits=httpx.Limits(max_connections=args.concurrency),
    )


def new_progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("elapsed"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
    )


async def execute(
    args: argparse.Namespace,
    work: Plan,
    err: Console,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[Outcome]:
    """Send every planned job with a progress bar; waits and retries are printed above it."""
    if not work.jobs:
        return []
    policy = RetryPolicy(retries=args.retries, max_wait=args.max_wait)
    async with make_client(args, transport) as client:
        with new_progress(err) as progress:
            task = progress.add_task("Removing backgrounds", total=len(work.jobs))

            def notify(message: str) -> None:
                progress.console.print(message, markup=False, highlight=False)

            uploader = Uploader(client, options_from(args), policy, notify=notify)
            return await run_jobs(
                work,
                uploader,
                args.concurrency,
                args.overwrite,
                on_done=lambda _: progress.advance(task),
            )


def output_format(
    args: argparse.Namespace, transport: httpx.AsyncBaseTransport | None = None
) -> str | None:
    """--format, else the format of --preset (the server's table), else the server default."""
    if args.format or not args.preset:
        return args.format

    async def ask() -> str | None:
        async with make_client(args, transport) as client:
            return await preset_format(client, args.preset)

    return asyncio.run(ask())


def usage_error(parser: argparse.ArgumentParser, message: str) -> int:
    parser.print_usage(sys.stderr)
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def find_inputs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[InputFile] | int:
    """The inputs, or an exit code when there is nothing sensible to do."""
    try:
        items = discover(args.inputs, args.recursive)
    except InputError as exc:
        return usage_error(parser, str(exc))
    if not items:
        hint = "" if args.recursive else " (sub-folders need --recursive)"
        return usage_error(parser, f"no images found in the inputs{hint}")
    return items


def main(
    argv: Sequence[str] | None = None, transport: httpx.AsyncBaseTransport | None = None
) -> int:
    """Run the CLI and return its exit code (`transport` lets tests stand in for the server)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (argparse says 2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.bg_image is not None and args.bg_color is not None:  # the server's 400, sooner
        return usage_error(parser, "--bg-color and --bg-image cannot be used together: choose one")
    items = find_inputs(parser, args)
    if isinstance(items, int):
        return items
    out, err = Console(), Console(stderr=True)
    work = plan(
        items, args.output_dir, output_extension(output_format(args, transport)), args.overwrite
    )
    started = time.monotonic()
    try:
        outcomes = asyncio.run(execute(args, work, err, transport))
    except KeyboardInterrupt:
        err.print("[yellow]Interrupted[/yellow]: finished outputs are kept; run again to resume.")
        return EXIT_INTERRUPTED
    results = work.skipped + outcomes
    print_summary(out, results, time.monotonic() - started)
    return EXIT_FAILED if any(o.status == "failed" for o in results) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
