"""``python -m symgrad``: the command line (see symgrad.cli)."""

import sys

from symgrad.cli import main

sys.exit(main())
