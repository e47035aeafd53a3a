"""How remove.bg's API (`/v1.0/*`) tells a failure: its status and its code, from the same
errors the other routes answer with their own (`gateway/errors.py` asks here for every
error under remove.bg's base path, the edge's own refusals included).

remove.bg answers 400 for whatever is wrong with a request or its image, each with a code
made from the parameter that failed (`invalid_<parameter>`) or naming the problem
(`missing_source`, `roi_region_empty`...); 403 for a missing or wrong key; 429 for a spent
budget. Failures of the service itself keep their status and code.
"""

from __future__ import annotations

from typing import Any

from contract import errors

BAD_REQUEST, FORBIDDEN, TOO_MANY = 400, 403, 429
INVALID = "invalid_"
# (parameter, problem) -> remove.bg's code
PROBLEMS = {
    ("image", errors.MISSING): "missing_source",
    ("image", errors.MULTIPLE): "multiple_sources",
    ("image_file", errors.MULTIPLE): "multiple_sources",
    ("bg_image", errors.MULTIPLE): "multiple_bg_sources",
    ("roi", errors.EMPTY): "roi_region_empty",
    ("roi", errors.OUTSIDE): "roi_exceeds_bounds",
    ("image_url", errors.DOWNLOAD): "failed_image_download",
    ("bg_image_url", errors.DOWNLOAD): "failed_bg_download",
}
# The image's own failures; a background image's are its parameter's (`invalid_bg_...`).
IMAGE_FAILURES: dict[type[errors.ServiceError], str] = {
    errors.TooManyPixels: "resolution_too_high",
    errors.PayloadTooLarge: "file_too_large",
    errors.UnsupportedMediaType: "invalid_file_type",
    errors.InvalidImage: "failed_to_read_image",
    errors.NoSubject: "unknown_foreground",
}
IMAGE_PARAMETERS = (None, "image", "image_file", "image_file_b64")
REFUSALS: dict[type[errors.ServiceError], tuple[int, str]] = {
    errors.Unauthorized: (FORBIDDEN, "auth_failed"),
    errors.RateLimited: (TOO_MANY, "rate_limit_exceeded"),
}


def removebg_code(error: errors.ServiceError) -> tuple[int, str] | None:
    """remove.bg's status and code for `error`; None for the service's own failures, which
    keep the contract's status and code."""
    refusal = next((found for kind, found in REFUSALS.items() if isinstance(error, kind)), None)
    if refusal is not None:
        return refusal
    named = PROBLEMS.get((error.parameter or "", error.problem or ""))
    if named is not None:
        return BAD_REQUEST, named
    if error.parameter not in IMAGE_PARAMETERS:
        return BAD_REQUEST, f"{INVALID}{error.parameter}"
    failure = next((code for kind, code in IMAGE_FAILURES.items() if isinstance(error, kind)), None)
    if failure is not None:
        return BAD_REQUEST, failure
    if isinstance(error, errors.InvalidParameter):
        return BAD_REQUEST, f"{INVALID}parameters"
    return None


def removebg_body(error: errors.ServiceError, code: str) -> dict[str, Any]:
    return {"errors": [{"title": error.title, "code": code, "detail": error.details}]}
