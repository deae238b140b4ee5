"""One way for a test to wait: poll what the system tells, with a deadline, and say what never came.

``await eventually(check, timeout, what)`` polls ``check`` (a function, sync or
async) until it returns something truthy and returns that; ``wait`` is the same
for code outside an event loop (a thread, a test driving subprocesses).  A
timeout raises ``AssertionError`` naming ``what`` and the last value seen, so a
failure on a loaded CI machine says what was missing, not only that time ran out.

Poll state the system exposes (a counter, a row, a flag); never sleep a fixed time
and then assert.
"""

from __future__ import annotations

import inspect
import time
from typing import Any, Awaitable, Callable, TypeVar

import anyio

T = TypeVar("T")

#: Generous: CI machines are shared and slow; a passing test never waits this long.
DEFAULT_TIMEOUT_S = 20.0


async def eventually(check: Callable[[], T | Awaitable[T]], timeout: float = DEFAULT_TIMEOUT_S, what: str = "",
                     *, step: float = 0.02) -> T:
    """Poll ``check`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or _name(check)}; last {last!r}")
        await anyio.sleep(step)


def wait(check: Callable[[], T], timeout: float = DEFAULT_TIMEOUT_S, what: str = "", *, step: float = 0.05) -> T:
    """``eventually`` for code outside an event loop (blocks the calling thread)."""
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or _name(check)}; last {last!r}")
        time.sleep(step)


def _name(check: Callable[..., Any]) -> str:
    return getattr(check, "__qualname__", None) or repr(check)


__all__ = ["DEFAULT_TIMEOUT_S", "eventually", "wait"]
