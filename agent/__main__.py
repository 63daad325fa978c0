"""``python -m agent``: the same as ``hq agent``."""

import sys

from agent.main import main

sys.exit(main())
