"""`python -m bg_remover_client` runs the CLI."""

import sys

from bg_remover_client.cli import main

sys.exit(main())
