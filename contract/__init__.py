"""The HTTP contract (../shared/API.md) in plain Python: errors, response shapes, file access."""
