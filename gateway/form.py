"""FastAPI parameters shared by the multipart routes: options as form fields, and uploads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, File, Form, Request, UploadFile

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
