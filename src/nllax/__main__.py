"""``python -m nllax [report] ...``: the same as the ``nllax`` console script."""

import sys

from nllax.cli import main

sys.exit(main())
