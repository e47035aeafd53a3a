"""Command-line client for the self-hosted background-removal service.

`bg-remover INPUT...` sends images to `POST /remove-background`, a few at a time, and writes
the cut-outs beside the inputs or into `--output-dir`. See `bg-remover --help`.
"""

__version__ = "0.1.0"
