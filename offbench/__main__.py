"""``python -m offbench``: the command line."""

import sys

from offbench.cli import main

sys.exit(main())
