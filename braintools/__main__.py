"""``python -m braintools``: the command line (``braintools.cli``)."""

import sys

from braintools.cli import main

if __name__ == "__main__":
    sys.exit(main())
