"""What the OpenAPI document (`/docs.json`) says about each route: its request body, its
success response and every error status it can answer with, with the error body's schema.

The routes parse their bodies themselves (so that every failure is the contract's JSON error),
which is why request bodies are described here rather than inferred by FastAPI.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from optimizer import PRESETS, OutputFormat

BINARY = {"type": "string", "format": "binary"}
IMAGE_TYPES = tuple(fmt.mimetype for fmt in OutputFormat)
ERROR_DESCRIPTIONS = {
    400: "Invalid option or image (`invalid_parameter`, `invalid_image`)",
    401: "API_KEYS is set and X-API-Key is missing or wrong (`unauthorized`)",
    403: "Outside UPLOAD_DIR (`forbidden`)",
    404: "No such file (`not_found`)",
    408: "The request head or body arrived too slowly (`request_timeout`)",
    413: "Body over MAX_CONTENT_LENGTH or image over MAX_IMAGE_PIXELS (`payload_too_large`)",
    415: "Not an image in a format the service decodes (`unsupported_media_type`)",
    429: "Rate limit reached (`rate_limited`); see Retry-After",
    503: "Overloaded, or the model or Redis is unavailable (`overloaded`, `unavailable`)",
    504: "Not answered within REQUEST_TIMEOUT_S (`timeout`); the work is cancelled",
}
REMOVEBG_ERROR_DESCRIPTIONS = {
    400: "A parameter or the image is wrong (`invalid_<parameter>`, `missing_source`, "
    "`multiple_sources`, `invalid_file_type`, `file_too_large`, `resolution_too_high`, "
    "`failed_to_read_image`, `unknown_foreground`...; see docs/removebg.md)",
    403: "The key (X-Api-Key or Authorization: Bearer) is missing or wrong (`auth_failed`)",
    408: ERROR_DESCRIPTIONS[408],
    429: "The budget is spent (`rate_limit_exceeded`); see Retry-After",
    503: ERROR_DESCRIPTIONS[503],
    504: ERROR_DESCRIPTIONS[504],
}
# What remove.bg's API may answer besides its result: it folds 401, 413 and 415 into these.
REMOVEBG_ERRORS = (400, 403, 408, 429, 503, 504)
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "If-None-Match holds this result's ETag: no body, no budget spent"}
}
# Middleware answers every guarded processing route may give.
GUARDED = (401, 408, 413, 503, 504)


class ErrorBody(BaseModel):
    error: str = Field(examples=["Invalid optimization parameters"])
    code: str = Field(examples=["invalid_parameter"])
    solution: str
    details: str


class RemoveBgError(BaseModel):
    title: str
    code: str
    detail: str


class RemoveBgErrors(BaseModel):
    errors: list[RemoveBgError]


class Optimization(BaseModel):
    format: str
    quality: int
    dimensions: str = Field(examples=["1200x900"])
    compression_ratio: str = Field(examples=["78%"])
    preset: str | None


class JsonResult(BaseModel):
    success: bool
    image: str = Field(description="the output image in base64")
    mimetype: str
    size: int
    original_size: int
    width: int
    height: int
    optimization: Optimization


class FileResult(BaseModel):
    success: bool
    filename: str
    mimetype: str
    size: int
    image: str = Field(description="the file in base64")


class Check(BaseModel):
    ok: bool
    detail: str


class Health(BaseModel):
    status: str = Field(description="healthy, degraded or unhealthy")
    checks: dict[str, Check]


class ModelInfo(BaseModel):
    name: str
    input_size: int
    precision: str
    batched: bool


class Models(BaseModel):
    default: str
    models: list[ModelInfo]


class PresetOptions(BaseModel):
    format: str
    quality: int
    max_width: int | None
    max_height: int | None


class ProcessingOptions(BaseModel):
    """The processing options, as form fields or JSON members."""

    model_config = ConfigDict(json_schema_extra={"additionalProperties": False})

    format: str | None = Field(None, description="PNG, JPEG (JPG), WEBP or AVIF")
    quality: int | None = Field(None, description="10-100")
    max_width: int | None = Field(None, description="100-4000")
    max_height: int | None = Field(None, description="100-4000")
    preset: str | None = Field(None, description=", ".join(PRESETS))
    bg_color: str | None = Field(None, description="#rgb, #rrggbb, #rrggbbaa or a colour name")
    crop: bool | None = None
    crop_margin: str | None = Field(
        None, description="1, 2 or 4 values (CSS order), each pixels or N% of the subject box"
    )
    only_mask: bool | None = None
    model: str | None = Field(None, description="a model listed by GET /models")
    scale: str | None = Field(None, description="original, or 10%-100% of the canvas")
    position: str | None = Field(None, description="original, center, X% or X% Y%")
    canvas: str | None = Field(None, description="WxH, each side 100-MAX_CANVAS_SIDE")
    roi: str | None = Field(None, description="x1 y1 x2 y2, each Npx, N% or 0")
    bg_image_url: str | None = Field(
        None, description="a background picture's URL; only when ALLOW_IMAGE_URL is on"
    )
    shadow: str | None = Field(None, description="none or drop")
    shadow_opacity: int | None = Field(None, description="0-100 (default 50)")
    edges: str | None = Field(None, description="keep or decontaminate")


class Base64Request(ProcessingOptions):
    image: str = Field(description="the image in base64, or a data: URL")
    bg_image: str | None = Field(
        None, description="a background picture in base64, or a data: URL (not with bg_color)"
    )


class ReadFileRequest(BaseModel):
    path: str = Field(description="relative to UPLOAD_DIR")


class RemoveBgRequest(BaseModel):
    """remove.bg's parameters (docs/removebg.md); exactly one of image_file, image_file_b64,
    image_url."""

    image_file_b64: str | None = None
    image_url: str | None = Field(None, description="only when ALLOW_IMAGE_URL is on")
    size: str | None = Field(
        None,
        description="preview (default, 0.25 credits), small, regular, medium, hd, full, "
        "4k, auto, 50MP",
    )
    type: str | None = Field(None, description="auto, person, product, car, animal, ...")
    type_level: str | None = Field(None, description="none (no X-Type), 1, 2, latest")
    format: str | None = Field(None, description="auto, png, jpg, webp or zip")
    roi: str | None = Field(None, description="x1 y1 x2 y2, each px or %")
    crop: bool | None = None
    crop_margin: str | None = Field(None, description="1, 2 or 4 values, px or %")
    scale: str | None = Field(None, description="original, or 10%-100%")
    position: str | None = Field(None, description="original, center, X% or X% Y%")
    channels: str | None = Field(None, description="rgba or alpha")
    bg_color: str | None = Field(None, description="hex (81d4fa) or a colour name")
    bg_image_url: str | None = Field(None, description="only when ALLOW_IMAGE_URL is on")
    add_shadow: bool | None = None
    shadow_type: str | None = Field(None, description="drop (car and 3D: the same)")
    shadow_opacity: int | None = Field(None, description="0-100")
    shadow_method: str | None = Field(None, description="accepted, no effect")
    semitransparency: bool | None = Field(None, description="accepted, no effect")


class ImproveRequest(BaseModel):
    """remove.bg's improvement program; exactly one of image_file, image_file_b64,
    image_url."""

    image_file_b64: str | None = None
    image_url: str | None = Field(None, description="only when ALLOW_IMAGE_URL is on")
    image_filename: str | None = None
    tag: str | None = Field(None, description="submissions with one tag belong together")


class ImproveResult(BaseModel):
    id: str = Field(examples=["fe09820b-be79-4511-8836-679583529882"])


def schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def _form(model: type[BaseModel], files: dict[str, Any]) -> dict[str, Any]:
    """A multipart/form-data schema: `model`'s fields as text fields, plus the uploads."""
    fields = {
        name: {"type": "string", "description": info.description or ""}
        for name, info in model.model_fields.items()
    }
    return {"type": "object", "properties": {**files, **fields}}


def request_body(*media: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {media_type: {"schema": body_schema} for media_type, body_schema in media},
        }
    }


def errors(*statuses: int, removebg: bool = False) -> dict[int | str, dict[str, Any]]:
    model = RemoveBgErrors if removebg else ErrorBody
    described = REMOVEBG_ERROR_DESCRIPTIONS if removebg else ERROR_DESCRIPTIONS
    return {
        status: {"description": described[status], "model": model}
        for status in sorted(set(statuses))
    }


def binary(description: str, *media_types: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {media_type: {"schema": BINARY} for media_type in media_types},
    }


BACKGROUND = {**BINARY, "description": "a background picture (not with bg_color)"}
ONE_IMAGE = _form(ProcessingOptions, {"file": BINARY, "bg_image": BACKGROUND})
MANY_IMAGES = _form(
    ProcessingOptions,
    {"files": {"type": "array", "items": BINARY}, "bg_image": BACKGROUND},
)
REMOVEBG_FORM = _form(RemoveBgRequest, {"image_file": BINARY, "bg_image_file": BINARY})
IMPROVE_FORM = _form(ImproveRequest, {"image_file": BINARY})
