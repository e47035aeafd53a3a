"""The service's errors: each has a stable machine-readable `code`, a title and advice.

Domain code raises these; the HTTP edge (`gateway/errors.py`) is the one place that maps a
code to a status and renders the body. `headers` carries what the client needs to act on the
error (Retry-After). `parameter` names what of the request failed, in the words of the API that
was called (`image`, `scale`, `bg_image_url`...), and `problem` how, when it is more than an
invalid value: `missing`, `multiple`, `empty`, `outside`, `download`. remove.bg's API answers
with codes made of both (`gateway/removebg_errors.py`).
"""

from __future__ import annotations

from typing import Any, ClassVar

# Why a 503 shed the request (the `reason` of `bg_remover_shed_total`): the concurrency cap,
# no memory free for the image in time, the model service's queue, a dependency down.
SHED_OVERLOADED = "overloaded"
SHED_MEMORY = "memory"
SHED_MODEL_QUEUE = "model_queue"
SHED_UNAVAILABLE = "unavailable"
SHED_REASONS = (SHED_OVERLOADED, SHED_MEMORY, SHED_MODEL_QUEUE, SHED_UNAVAILABLE)
# How a parameter failed, beyond an invalid value.
MISSING, MULTIPLE, EMPTY, OUTSIDE, DOWNLOAD = "missing", "multiple", "empty", "outside", "download"


class ServiceError(Exception):
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal error"
    solution: ClassVar[str] = "Please try again later"
    shed_reason: str | None = None  # set on the errors that shed load (503)

    def __init__(
        self,
        details: str,
        *,
        headers: dict[str, str] | None = None,
        shed_reason: str | None = None,
        parameter: str | None = None,
        problem: str | None = None,
    ) -> None:
        super().__init__(details)
        # Details may quote what a client sent: as text that encodes (no lone surrogates).
        self.details = details.encode("utf-8", "backslashreplace").decode("utf-8")
        self.headers = headers or {}
        if shed_reason is not None:
            self.shed_reason = shed_reason
        self.parameter = parameter
        self.problem = problem

    def body(self) -> dict[str, Any]:
        return {
            "error": self.title,
            "code": self.code,
            "solution": self.solution,
            "details": self.details,
        }


class InvalidParameter(ServiceError):
    code = "invalid_parameter"
    title = "Invalid optimization parameters"
    solution = "Please check format, quality, and dimension values"


class InvalidImage(ServiceError):
    code = "invalid_image"
    title = "Invalid image"
    solution = "Please send a complete, decodable image file"


class Unauthorized(ServiceError):
    code = "unauthorized"
    title = "Unauthorized"
    solution = "Send a valid API key in the X-API-Key header"


class Forbidden(ServiceError):
    code = "forbidden"
    title = "Forbidden"
    solution = "This resource is not available to you"


class NotFound(ServiceError):
    code = "not_found"
    title = "Not found"
    solution = "Check the path"


class MethodNotAllowed(ServiceError):
    code = "method_not_allowed"
    title = "Method not allowed"
    solution = "Use the method the API documents for this path (see /docs.json)"


class RequestTimeout(ServiceError):
    code = "request_timeout"
    title = "Request timeout"
    solution = "Send the request body faster, or a smaller body"


class ProcessingTimeout(ServiceError):
    code = "timeout"
    title = "Processing timeout"
    solution = "Retry later, or send a smaller image"


class PayloadTooLarge(ServiceError):
    code = "payload_too_large"
    title = "Payload too large"
    solution = "Send a smaller file or an image with fewer pixels"


class TooManyPixels(PayloadTooLarge):
    """An image with more pixels than the server decodes (not a body too large)."""


class UnsupportedMediaType(ServiceError):
    code = "unsupported_media_type"
    title = "Unsupported media type"
    solution = "Send a JPEG, PNG, WEBP, AVIF, GIF or BMP image"


class NoSubject(ServiceError):
    """The model found nothing to cut out (remove.bg's API only: the other routes tell it in
    a header and answer)."""

    code = "unknown_foreground"
    title = "Could not identify foreground in image"
    solution = "Send a photo with a clear subject (a person, product, animal, car...)"


class RateLimited(ServiceError):
    code = "rate_limited"
    title = "Rate limit exceeded"
    solution = "Wait until the time given in Retry-After, then try again"


class Overloaded(ServiceError):
    code = "overloaded"
    title = "Service overloaded"
    solution = "Retry after the time given in Retry-After"
    shed_reason = SHED_OVERLOADED


class Unavailable(ServiceError):
    code = "unavailable"
    title = "Service unavailable"
    solution = "Retry later"
    shed_reason = SHED_UNAVAILABLE
