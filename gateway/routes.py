"""The HTTP routes: each reads what the request carries and calls the application layer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from application import Application, Caller, Reply
from contract import headers, routes
from gateway import openapi as docs
from gateway.context import RequestContext
from gateway.forms import read_form
from gateway.requests import is_json, json_object

router = APIRouter()
UNIDENTIFIED = "unknown"  # the client of an app without ClientIdentity in front (never served)


def _application(request: Request) -> Application:
    return request.app.state.application


def _caller(request: Request) -> Caller:
    """The caller as the middleware identified it; its header and log dicts are the context's,
    which the middleware reads back."""
    context = RequestContext.of(request.scope)
    return Caller(
        client=context.client or UNIDENTIFIED,
        request_id=context.request_id,
        headers=context.response_headers,
        log=context.log,
        if_none_match=request.headers.get(headers.IF_NONE_MATCH),
        loadtest=context.loadtest,
    )


App = Annotated[Application, Depends(_application)]
Call = Annotated[Caller, Depends(_caller)]
PROCESSING_ERRORS = {**docs.NOT_MODIFIED, **docs.errors(*docs.GUARDED, 400, 415, 429)}


def render(reply: Reply) -> Response:
    if reply.not_modified:
        return Response(status_code=304, headers=reply.headers)
    return Response(reply.body, media_type=reply.media_type, headers=reply.headers)


@router.post(
    routes.REMOVE,
    summary="Image in, image out",
    response_class=Response,
    responses={200: docs.binary("The result image", *docs.IMAGE_TYPES), **PROCESSING_ERRORS},
    openapi_extra=docs.request_body(("multipart/form-data", docs.ONE_IMAGE)),
)
async def remove_background(request: Request, app: App, caller: Call) -> Response:
    form = await read_form(request)
    upload, background = form.upload("file"), form.upload("bg_image")
    return render(await app.remove_file(caller, upload, form.options(), background))


@router.post(
    routes.PREVIEW,
    summary="Image in, JSON with the result in base64 out",
    responses={200: {"model": docs.JsonResult}, **PROCESSING_ERRORS},
    openapi_extra=docs.request_body(("multipart/form-data", docs.ONE_IMAGE)),
)
async def remove_background_preview(request: Request, app: App, caller: Call) -> Response:
    form = await read_form(request)
    upload, background = form.upload("file"), form.upload("bg_image")
    return render(await app.preview(caller, upload, form.options(), background))


@router.post(
    routes.BASE64,
    summary="JSON with the image in base64 in, JSON out",
    responses={200: {"model": docs.JsonResult}, **PROCESSING_ERRORS},
    openapi_extra=docs.request_body(("application/json", docs.schema(docs.Base64Request))),
)
async def remove_background_base64(request: Request, app: App, caller: Call) -> Response:
    return render(await app.remove_base64(caller, await json_object(request)))


@router.post(
    routes.BATCH,
    summary="Images in, a zip of the results and manifest.json out",
    response_class=Response,
    responses={
        200: docs.binary("The results and manifest.json", "application/zip"),
        **PROCESSING_ERRORS,
    },
    openapi_extra=docs.request_body(("multipart/form-data", docs.MANY_IMAGES)),
)
async def remove_background_batch(request: Request, app: App, caller: Call) -> Response:
    form = await read_form(request)
    uploads, background = form.uploads("files"), form.upload("bg_image")
    return render(await app.remove_batch(caller, uploads, form.options(), background))


@router.post(
    routes.READ_FILE,
    summary="An image from UPLOAD_DIR, in base64",
    responses={
        200: {"model": docs.FileResult},
        **docs.errors(*docs.GUARDED, 400, 403, 404, 413, 415, 429),
    },
    openapi_extra=docs.request_body(("application/json", docs.schema(docs.ReadFileRequest))),
)
async def read_file(request: Request, app: App, caller: Call) -> Response:
    return render(await app.read_file(caller, await json_object(request)))


@router.post(
    routes.REMOVEBG,
    tags=["remove.bg compatible"],
    response_class=Response,
    summary="remove.bg's API: same parameters, headers and error shape",
    responses={
        200: docs.binary(
            "The result (or JSON with Accept: application/json)",
            *docs.IMAGE_TYPES,
            "application/zip",
            "application/json",
        ),
        **docs.NOT_MODIFIED,
        **docs.errors(*docs.REMOVEBG_ERRORS, removebg=True),
    },
    openapi_extra=docs.request_body(
        ("multipart/form-data", docs.REMOVEBG_FORM),
        ("application/x-www-form-urlencoded", docs.schema(docs.RemoveBgRequest)),
        ("application/json", docs.schema(docs.RemoveBgRequest)),
    ),
)
async def removebg(request: Request, app: App, caller: Call) -> Response:
    json_wanted = "application/json" in request.headers.get(headers.ACCEPT, "")
    if is_json(request):
        reply = await app.removebg(caller, await json_object(request), None, json_wanted)
    else:
        form = await read_form(request, urlencoded=True)
        upload, background = form.upload("image_file"), form.upload("bg_image_file")
        reply = await app.removebg(caller, form.options(), upload, json_wanted, background)
    return render(reply)


@router.post(
    routes.IMPROVE,
    tags=["remove.bg compatible"],
    summary="remove.bg's improvement program: an image and a tag kept for the operator",
    responses={
        200: {"model": docs.ImproveResult},
        **docs.errors(*docs.REMOVEBG_ERRORS, removebg=True),
    },
    openapi_extra=docs.request_body(
        ("multipart/form-data", docs.IMPROVE_FORM),
        ("application/x-www-form-urlencoded", docs.schema(docs.ImproveRequest)),
        ("application/json", docs.schema(docs.ImproveRequest)),
    ),
)
async def improve(request: Request, app: App, caller: Call) -> Response:
    if is_json(request):
        return render(await app.improve(caller, await json_object(request), None))
    form = await read_form(request, urlencoded=True)
    return render(await app.improve(caller, form.options(), form.upload("image_file")))


@router.get(
    routes.ACCOUNT,
    tags=["remove.bg compatible"],
    summary="remove.bg's account call: the remaining /remove-background budget",
    responses=docs.errors(403, 503, removebg=True),
)
async def account(app: App, caller: Call) -> Response:
    return render(await app.account(caller))


@router.get(
    routes.PRESETS,
    summary="Named option sets",
    responses={200: {"model": dict[str, docs.PresetOptions]}, **docs.errors(401)},
)
async def presets(app: App) -> Response:
    return render(app.presets())


@router.get(
    routes.MODELS,
    summary="The models `model=` accepts",
    responses={200: {"model": docs.Models}, **docs.errors(401, 503)},
)
async def models(app: App) -> Response:
    return render(await app.models())


@router.get(
    routes.HEALTH,
    summary="Health of the app, model, Redis, disk and memory",
    responses={
        200: {"model": docs.Health},
        503: {"model": docs.Health, "description": "unhealthy"},
    },
)
async def health(app: App) -> JSONResponse:
    report = await app.health()
    return JSONResponse(report.body, status_code=503 if report.unhealthy else 200)


@router.get(routes.PLAYGROUND, include_in_schema=False)
async def playground() -> RedirectResponse:
    return RedirectResponse(f"{routes.PLAYGROUND}/")
