"""ASGI middleware in front of every route: checks that must run before a body is read,
and headers every response carries. Plain ASGI/Starlette; imports nothing from BentoML.
"""
