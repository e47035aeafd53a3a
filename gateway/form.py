"""FastAPI parameters shared by the multipart routes: options as form fields, and uploads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, File, Form, Request, UploadFile
from starlette.datastructures import UploadFile as ReceivedFile

from contract.errors import InvalidParameter
from optimizer import PRESETS

UPLOAD_FIELDS = ("file", "files")


async def form_options(
    request: Request,
    format: Annotated[str | None, Form(description="PNG, JPEG (JPG), WEBP or AVIF")] = None,
    quality: Annotated[str | None, Form(description="10-100")] = None,
    max_width: Annotated[str | None, Form(description="100-4000")] = None,
    max_height: Annotated[str | None, Form(description="100-4000")] = None,
    preset: Annotated[str | None, Form(description=", ".join(PRESETS))] = None,
    bg_color: Annotated[str | None, Form(description="#rgb, #rrggbb, #rrggbbaa or a name")] = None,
    crop: Annotated[str | None, Form(description="boolean")] = None,
    crop_margin: Annotated[str | None, Form(description="px, or N% of the subject box")] = None,
    only_mask: Annotated[str | None, Form(description="boolean")] = None,
    model: Annotated[str | None, Form(description="a model in the store")] = None,
) -> dict[str, Any]:
    """Every form field but the uploads, unknown ones included (they are refused later);
    the declared parameters are there to document the options in OpenAPI."""
    form = await request.form()
    return {key: value for key, value in form.multi_items() if key not in UPLOAD_FIELDS}


FormOptions = Annotated[dict[str, Any], Depends(form_options)]
ImageFile = Annotated[UploadFile | None, File(description="The image (JPEG, PNG, WEBP, ...)")]
ImageFiles = Annotated[list[UploadFile] | None, File(description="The images")]


@dataclass
class RemoveBgFields:
    """remove.bg's parameters, sent as multipart, urlencoded or JSON, and the upload if any."""

    fields: dict[str, Any]
    image_file: ReceivedFile | None


async def removebg_fields(
    request: Request,
    image_file: Annotated[UploadFile | None, File(description="the image")] = None,
    image_file_b64: Annotated[str | None, Form(description="the image in base64")] = None,
    image_url: Annotated[str | None, Form(description="only when ALLOW_IMAGE_URL")] = None,
    size: Annotated[str | None, Form(description="preview (default), full, auto, ...")] = None,
    format: Annotated[str | None, Form(description="auto, png, jpg, webp, zip")] = None,
    channels: Annotated[str | None, Form(description="rgba or alpha")] = None,
    crop: Annotated[str | None, Form(description="boolean")] = None,
    crop_margin: Annotated[str | None, Form(description="px or %")] = None,
    bg_color: Annotated[str | None, Form(description="hex (81d4fa) or a name")] = None,
) -> RemoveBgFields:
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            raise InvalidParameter("The body is not valid JSON") from None
        if not isinstance(body, dict):
            raise InvalidParameter("The JSON body must be an object")
        return RemoveBgFields(body, None)
    form = await request.form()
    # Parsed uploads are Starlette's UploadFile, of which FastAPI's is only a subclass.
    fields = {key: value for key, value in form.multi_items()
              if not isinstance(value, ReceivedFile)}
    upload = form.get("image_file")
    return RemoveBgFields(fields, upload if isinstance(upload, ReceivedFile) else None)


RemoveBgRequestFields = Annotated[RemoveBgFields, Depends(removebg_fields)]
