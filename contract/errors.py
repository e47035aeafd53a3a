"""The service's errors, each mapped to the contract's status, `code` and advice.

Domain code raises these; the HTTP layer turns any of them into the contract's JSON body with
`ServiceError.body()`. Nothing else decides an error's status.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ServiceError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal error"
    solution: ClassVar[str] = "Please try again later"

    def __init__(self, details: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(details)
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": self.title,
            "code": self.code,
            "solution": self.solution,
            "details": self.details,
        }


class InvalidParameter(ServiceError):
    status, code = 400, "invalid_parameter"
    title = "Invalid optimization parameters"
    solution = "Please check format, quality, and dimension values"


class InvalidImage(ServiceError):
    status, code = 400, "invalid_image"
    title = "Invalid image"
    solution = "Please send a complete, decodable image file"


class Unauthorized(ServiceError):
    status, code = 401, "unauthorized"
    title = "Unauthorized"
    solution = "Send a valid API key in the X-API-Key header"


class Forbidden(ServiceError):
    status, code = 403, "forbidden"
    title = "Forbidden"
    solution = "This resource is not available to you"


class NotFound(ServiceError):
    status, code = 404, "not_found"
    title = "Not found"
    solution = "Check the path"


class MethodNotAllowed(ServiceError):
    status, code = 405, "method_not_allowed"
    title = "Method not allowed"
    solution = "Use the method the API documents for this path (see /docs.json)"


class PayloadTooLarge(ServiceError):
    status, code = 413, "payload_too_large"
    title = "Payload too large"
    solution = "Send a smaller file or an image with fewer pixels"


class UnsupportedMediaType(ServiceError):
    status, code = 415, "unsupported_media_type"
    title = "Unsupported media type"
    solution = "Send a JPEG, PNG, WEBP, AVIF, GIF or BMP image"


class RateLimited(ServiceError):
    status, code = 429, "rate_limited"
    title = "Rate limit exceeded"
    solution = "Wait until the time given in Retry-After, then try again"


class Overloaded(ServiceError):
    status, code = 503, "overloaded"
    title = "Service overloaded"
    solution = "Retry after the time given in Retry-After"


class Unavailable(ServiceError):
    status, code = 503, "unavailable"
    title = "Service unavailable"
    solution = "Retry later"



def error_for_status(status: int, details: str,
                     headers: dict[str, str] | None = None) -> ServiceError:
    """The error class answering with `status`, for failures that arrive as a bare status."""
    for kind in (InvalidParameter, Unauthorized, Forbidden, NotFound, MethodNotAllowed,
                 PayloadTooLarge, UnsupportedMediaType, RateLimited, Unavailable):
        if kind.status == status:
            return kind(details, headers=headers)
    return ServiceError(details, headers=headers)
