"""``python -m rfprior`` — same as the ``rfprior`` command."""

import sys

from .cli import main

sys.exit(main())
