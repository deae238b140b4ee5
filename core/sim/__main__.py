"""``python -m firebus.core.sim modbus|smoke|list`` — the simulators without the full CLI."""

import sys

from .cli import main

sys.exit(main())
