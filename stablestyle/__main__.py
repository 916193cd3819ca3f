"""``python -m stablestyle``: the command line (:func:`stablestyle.cli.main`)."""

import sys

from .cli import main

sys.exit(main())
