"""Meta-test: every hookspec is documented and tested.

A hook a vendor cannot read about, or that no test implements or calls, is a
promise nobody checks; adding a hookspec without both fails here.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from firebus.sdk import hookspecs

TESTS = Path(__file__).parents[1]
HOOKS = sorted(name for name, obj in vars(hookspecs).items()
               if name.startswith("firebus_") and inspect.isfunction(obj))


def test_there_are_hookspecs() -> None:
    assert "firebus_register_drivers" in HOOKS and len(HOOKS) >= 10


@pytest.mark.parametrize("hook", HOOKS)
def test_hookspec_is_documented(hook: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert len(doc.split()) >= 5, f"hookspec {hook} needs a docstring saying what to return and when it is called"


def _test_sources() -> dict[Path, str]:
    me = Path(__file__).resolve()
    return {p: p.read_text(encoding="utf-8") for p in TESTS.rglob("*.py") if p.resolve() != me}


@pytest.mark.parametrize("hook", HOOKS)
def test_hookspec_is_tested(hook: str) -> None:
    # Implemented by a test plugin (``def firebus_x(``) or called (``hook.firebus_x(``, ``call_each("firebus_x"``).
    pattern = re.compile(rf"def {hook}\(|hook\.{hook}\(|call_each\(\s*[\"']{hook}[\"']")
    users = [p.relative_to(TESTS) for p, text in _test_sources().items() if pattern.search(text)]
    assert users, f"no test implements or calls hookspec {hook} (add one under tests/)"
