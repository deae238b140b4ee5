"""Quality levels of the contract suites: bronze, silver, gold.

A contract test carries the level it belongs to (``@level(Level.SILVER)``); a suite's level
is the highest one whose tests, and every lower level's, all passed.  The pytest plugin
collects the results and prints ``firebus quality: TestAcmeRcm: gold (11/11)``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Callable, Iterable


class Level(StrEnum):
    BRONZE = "bronze"
    SILVER = "silver"
    GOLD = "gold"


LEVELS = (Level.BRONZE, Level.SILVER, Level.GOLD)


def level(lvl: Level | str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Tag a contract test with the quality level it belongs to."""
    def mark(func: Callable[..., Any]) -> Callable[..., Any]:
        func._firebus_level = Level(lvl)  # type: ignore[attr-defined]
        return func
    return mark


def quality_level(results: Iterable[tuple[Level | str, bool]]) -> Level | None:
    """The highest level whose tests, and all lower levels' tests, passed (None: not even bronze)."""
    by_level: dict[Level, list[bool]] = {lv: [] for lv in LEVELS}
    for lvl, passed in results:
        by_level[Level(lvl)].append(passed)
    earned: Level | None = None
    for lvl in LEVELS:
        if not by_level[lvl] or not all(by_level[lvl]):
            break
        earned = lvl
    return earned
