"""Login throttling per account and per address (OWASP ASVS 6.1.1, 6.3.1, 2.4.1).

A lock-out that an attacker can trigger is itself an attack on a fire-control room
(nobody can log in to acknowledge), so an account is never locked: after
``free_failures`` failures in the window each further attempt must wait a
delay that doubles up to ``max_delay_s`` (a guesser gets a few hundred tries a day,
the duty officer waits seconds).  An address that fails too often across any
accounts (credential stuffing) is refused for the rest of its window.
A success clears the account's counter.  State is in memory: a restart forgets it,
which costs an attacker a restart they cannot cause from outside.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class _Track:
    failures: deque[float] = field(default_factory=deque)
    next_allowed: float = 0.0


class LoginThrottle:
    def __init__(
        self,
        *,
        window_s: float = 900.0,
        free_failures: int = 5,
        max_delay_s: float = 300.0,
        address_limit: int = 20,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_s = window_s
        self.free_failures = free_failures
        self.max_delay_s = max_delay_s
        self.address_limit = address_limit
        self.now = now
        self._accounts: dict[str, _Track] = {}
        self._addresses: dict[str, _Track] = {}

    def _prune(self, track: _Track, now: float) -> None:
        while track.failures and now - track.failures[0] > self.window_s:
            track.failures.popleft()

    def retry_after(self, account: str, address: str) -> float:
        """Seconds to wait before this attempt may be checked (0: go ahead)."""
        now = self.now()
        wait = 0.0
        acc = self._accounts.get(account)
        if acc is not None:
            self._prune(acc, now)
            wait = max(wait, acc.next_allowed - now)
        addr = self._addresses.get(address)
        if addr is not None:
            self._prune(addr, now)
            if len(addr.failures) >= self.address_limit:
                wait = max(wait, addr.failures[0] + self.window_s - now)
        return max(0.0, wait)

    def failed(self, account: str, address: str) -> None:
        now = self.now()
        acc = self._accounts.setdefault(account, _Track())
        self._prune(acc, now)
        acc.failures.append(now)
        over = len(acc.failures) - self.free_failures
        if over >= 0:
            acc.next_allowed = now + min(self.max_delay_s, 2.0 ** over)
        addr = self._addresses.setdefault(address, _Track())
        self._prune(addr, now)
        addr.failures.append(now)
        self._gc(now)

    def succeeded(self, account: str, address: str) -> None:
        self._accounts.pop(account, None)

    def _gc(self, now: float) -> None:
        # Bounded memory under a spray of random names or addresses.
        for table in (self._accounts, self._addresses):
            if len(table) > 10_000:
                for key in [k for k, t in table.items() if not t.failures or now - t.failures[-1] > self.window_s]:
                    table.pop(key, None)
