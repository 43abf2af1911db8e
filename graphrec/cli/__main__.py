"""``python -m graphrec.cli``: the ``graphrec`` command."""

import sys

from graphrec.cli import main

sys.exit(main())
