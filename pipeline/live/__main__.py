"""``python -m pipeline.live``: the live mode on its own (until it is merged into ``stylize-video``)."""

import sys

from pipeline.live.cli import main

sys.exit(main())
