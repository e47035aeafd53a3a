"""Names of the headers the service reads and sends: one list, used by the requests, the
responses and CORS."""

from __future__ import annotations

# Every processing response.
ORIGINAL_SIZE = "X-Original-Size"
OPTIMIZED_SIZE = "X-Optimized-Size"
OPTIMIZATION_USED = "X-Optimization-Used"
IMAGE_WIDTH = "X-Image-Width"
IMAGE_HEIGHT = "X-Image-Height"
PROCESSING_TIME_MS = "X-Processing-Time-Ms"
# The model's judgement of whether the photo shows a subject (segmentation/foreground.py).
FOREGROUND_COVERAGE = "X-Foreground-Coverage"
RESULT_HEADERS = (
    FOREGROUND_COVERAGE,
    ORIGINAL_SIZE,
    OPTIMIZED_SIZE,
    OPTIMIZATION_USED,
    IMAGE_WIDTH,
    IMAGE_HEIGHT,
    PROCESSING_TIME_MS,
)

# Rate-limited routes, once the limit was checked.
RATE_LIMIT_LIMIT = "X-RateLimit-Limit"
RATE_LIMIT_REMAINING = "X-RateLimit-Remaining"
RATE_LIMIT_RESET = "X-RateLimit-Reset"
RETRY_AFTER = "Retry-After"
RATE_LIMIT_HEADERS = (RATE_LIMIT_LIMIT, RATE_LIMIT_REMAINING, RATE_LIMIT_RESET, RETRY_AFTER)

# remove.bg's route.
REMOVEBG_WIDTH = "X-Width"
REMOVEBG_HEIGHT = "X-Height"
REMOVEBG_TYPE = "X-Type"
REMOVEBG_CREDITS = "X-Credits-Charged"
FOREGROUND_TOP = "X-Foreground-Top"
FOREGROUND_LEFT = "X-Foreground-Left"
FOREGROUND_WIDTH = "X-Foreground-Width"
FOREGROUND_HEIGHT = "X-Foreground-Height"
REMOVEBG_HEADERS = (
    REMOVEBG_WIDTH,
    REMOVEBG_HEIGHT,
    REMOVEBG_TYPE,
    REMOVEBG_CREDITS,
    FOREGROUND_TOP,
    FOREGROUND_LEFT,
    FOREGROUND_WIDTH,
    FOREGROUND_HEIGHT,
)

# Caching and timing, on every response carrying one result.
ETAG = "ETag"
X_CACHE = "X-Cache"
CACHE_CONTROL = "Cache-Control"
SERVER_TIMING = "Server-Timing"
CACHE_HEADERS = (ETAG, X_CACHE, CACHE_CONTROL, SERVER_TIMING)

CONTENT_DISPOSITION = "Content-Disposition"
REQUEST_ID = "X-Request-ID"  # sent on every response; an acceptable one from upstream is kept

# Read from requests.
API_KEY = "X-API-Key"
AUTHORIZATION = "Authorization"  # `Bearer <key>` on remove.bg's API, as its clients send it
FORWARDED_FOR = "X-Forwarded-For"  # believed from TRUSTED_PROXIES only
IF_NONE_MATCH = "If-None-Match"
ACCEPT = "Accept"  # remove.bg's route answers JSON when it names application/json

# On every response, whichever route or error produced it.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

# What a browser script may read from a cross-origin response.
EXPOSED_HEADERS = (
    CONTENT_DISPOSITION,
    REQUEST_ID,
    *RESULT_HEADERS,
    *RATE_LIMIT_HEADERS,
    *REMOVEBG_HEADERS,
    *CACHE_HEADERS,
)
