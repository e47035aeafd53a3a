"""The request flow of every route, tested without a server.

Imports nothing from BentoML, FastAPI or Starlette: `gateway/` is the HTTP edge over it and
`service.py` wires it to BentoML.
"""

from application.app import Application
from application.models import InProcessModels, ModelService
from application.replies import Caller, HealthReport, Reply, Upload

__all__ = [
    "Application",
    "Caller",
    "HealthReport",
    "InProcessModels",
    "ModelService",
    "Reply",
    "Upload",
]
