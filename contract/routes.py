"""The service's routes and the budget each rate-limited one spends."""

from __future__ import annotations

REMOVE = "/remove-background"
PREVIEW = "/remove-background-preview"
BASE64 = "/remove-background-base64"
BATCH = "/remove-background-batch"
READ_FILE = "/read-file"
# remove.bg's API, under its own base: every path there answers errors in remove.bg's shape.
REMOVEBG_BASE = "/v1.0/"
REMOVEBG = f"{REMOVEBG_BASE}removebg"
ACCOUNT = f"{REMOVEBG_BASE}account"
IMPROVE = f"{REMOVEBG_BASE}improve"
PRESETS = "/presets"
MODELS = "/models"
HEALTH = "/health"
METRICS = "/metrics"
PLAYGROUND = "/playground"

# Routes that run the model or read files: the concurrency cap applies to them.
PROCESSING = (REMOVE, PREVIEW, BASE64, BATCH, READ_FILE, REMOVEBG)
# Every route of ours (metrics and logs label requests by these; anything else is "other").
SERVICE = (*PROCESSING, ACCOUNT, IMPROVE, PRESETS, MODELS, HEALTH)
# BentoML's own routes.
PROBES = ("/livez", "/readyz", "/healthz")
OPENAPI = "/docs.json"
DOCS = ("/", OPENAPI, "/schema.json")
# What a proxy in front (the Ingress, compose's nginx) routes: every route of ours, the OpenAPI
# document and the playground; never /metrics or the probes.
PUBLIC = (*SERVICE, OPENAPI, PLAYGROUND)
PUBLIC_PREFIXES = (f"{PLAYGROUND}/",)
# No API key needed: probes, health, metrics (guarded by METRICS_ALLOW), docs, the playground
# page (which asks for a key for its API calls), Swagger UI's assets.
OPEN = (HEALTH, METRICS, PLAYGROUND, *PROBES, *DOCS)
OPEN_PREFIXES = ("/static_content/", f"{PLAYGROUND}/")

# Budget names: remove.bg's route spends /remove-background's budget.
BUDGETS = {
    REMOVE: "remove-background",
    REMOVEBG: "remove-background",
    PREVIEW: "remove-background-preview",
    BASE64: "remove-background-base64",
    BATCH: "remove-background-batch",
    READ_FILE: "read-file",
    IMPROVE: "improve",
}

# Budgets counted in fractions of a unit: how many parts a unit has. remove.bg charges a
# quarter of a credit for a preview, and /v1.0/removebg spends /remove-background's budget.
UNIT_PARTS = {"remove-background": 4}


def parts_of(budget: str) -> int:
    return UNIT_PARTS.get(budget, 1)


# Every exact path something answers (ours and BentoML's), and the prefixes of static files.
KNOWN = frozenset({*SERVICE, METRICS, PLAYGROUND, *PROBES, *DOCS})
STATIC_PREFIXES = OPEN_PREFIXES
OTHER = "/{other}"


def in_removebg_api(path: str) -> bool:
    """Whether `path` is under remove.bg's API (its errors then take remove.bg's shape)."""
    return path.startswith(REMOVEBG_BASE)


def label(path: str) -> str:
    """A path as metrics and logs may name it: one of a bounded set, whatever clients send."""
    if path in KNOWN:
        return path
    return next((prefix for prefix in STATIC_PREFIXES if path.startswith(prefix)), OTHER)
