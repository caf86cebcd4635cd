"""`python -m xlock.cli`, as `xlock`."""

import sys

from . import main

sys.exit(main())
