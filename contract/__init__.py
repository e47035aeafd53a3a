"""Facts of the HTTP contract that every layer shares: error codes, header names, routes.

Imports nothing else from the project, so any package may import it. The HTTP status of each
error is decided at the HTTP edge (`gateway/errors.py`), not here.
"""
