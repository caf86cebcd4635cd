"""`python -m xlock`: the `xlock` command."""

import sys

from .cli import main

sys.exit(main())
