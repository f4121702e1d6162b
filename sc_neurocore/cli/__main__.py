"""``python -m sc_neurocore.cli``."""

import sys

from . import main

sys.exit(main())
