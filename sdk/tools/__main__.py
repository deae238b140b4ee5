"""``python -m firebus.sdk.tools sdk new|check …``: the two commands without the rest of the CLI."""

import sys

from .cli import main

sys.exit(main())
