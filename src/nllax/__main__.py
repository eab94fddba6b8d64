"""``python -m nllax [report] ...``: the same as the ``nllax`` console script."""

import sys

from nllax._cli import main

sys.exit(main())
