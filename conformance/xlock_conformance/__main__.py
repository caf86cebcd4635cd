import sys

from xlock_conformance.cli import main

sys.exit(main())
