"""The developer tools: ``firebus sdk new NAME`` and ``firebus sdk check [PATH]``, the vendor's
two commands.  Not part of the plugin contract: plugins never import this package.

* ``scaffold`` — ``new`` writes a plugin package that installs and passes its own tests
  as generated;
* ``check`` — the hassfest of firebus: validates a plugin package before it reaches a site
  (manifest, entry point, hook signatures, no exact pins on the core's dependencies,
  profiles, tests) and exits non-zero with one clear line per problem;
* ``cli`` — the argparse wiring.

Wire into a CLI with ``add_sdk_commands(subparsers)``; standalone:
``python -m firebus.sdk.tools sdk check path/to/plugin``.
"""

from __future__ import annotations

# Everything ``firebus.sdk.tools`` held when it was one module, importable from here still
# (the CLI and vendors' scripts import it).
from .check import (
    ENTRY_POINT_GROUP,
    NAME_RE,
    CheckReport,
    Problem,
    check_package,
    check_package_data,
    check_profiles,
    check_tests,
    core_requirements,
    exact_pin,
    print_report,
    profile_point_classes,
    run_tests,
)
from .cli import add_sdk_commands, cmd_check, cmd_new, main
from .scaffold import new_package

__all__ = [
    "ENTRY_POINT_GROUP",
    "NAME_RE",
    "CheckReport",
    "Problem",
    "add_sdk_commands",
    "check_package",
    "check_package_data",
    "check_profiles",
    "check_tests",
    "cmd_check",
    "cmd_new",
    "core_requirements",
    "exact_pin",
    "main",
    "new_package",
    "print_report",
    "profile_point_classes",
    "run_tests",
]
