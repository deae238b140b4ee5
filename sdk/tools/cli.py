"""The ``sdk`` sub-commands: ``add_sdk_commands`` wires them into a CLI (``firebus sdk …``),
``main`` runs them alone (``python -m firebus.sdk.tools sdk new|check …``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from .check import check_package, print_report, run_tests
from .scaffold import new_package


def cmd_new(args: argparse.Namespace) -> int:
    try:
        root = new_package(args.name, args.dest)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"created {root}\nnext: cd {root} && pip install -e '.[test]' && pytest && firebus sdk check .")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    report = check_package(args.path)
    if args.tests and not report.errors:
        run_tests(report)
    return print_report(report)


def add_sdk_commands(subparsers: Any) -> None:
    """Add ``sdk new`` and ``sdk check`` to a CLI's sub-parsers."""
    sdk = subparsers.add_parser("sdk", help="plugin development: scaffold and check plugin packages")
    sub = sdk.add_subparsers(dest="sdk_command", metavar="SDK_COMMAND", required=True)
    p = sub.add_parser("new", help="create a plugin package that installs and passes its own tests")
    p.add_argument("name", help="plugin name (lowercase, e.g. acme): package firebus-NAME, module firebus_NAME")
    p.add_argument("--dest", default=".", help="folder to create it in (default: here)")
    p.set_defaults(func=cmd_new)
    p = sub.add_parser("check", help="validate a plugin package: manifest, entry point, hooks, pins, profiles, tests")
    p.add_argument("path", nargs="?", default=".", help="the package folder (default: here)")
    p.add_argument("--tests", action="store_true",
                   help="then run the package's tests (its contract suites) with pytest")
    p.set_defaults(func=cmd_check)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="firebus")
    add_sdk_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))
