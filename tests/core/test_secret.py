"""Core.secret: one key per purpose, stable across restarts of the same database, distinct per database."""

from __future__ import annotations

from pathlib import Path

import pytest

from firebus.sdk.testing.harness import site_yaml, start_core

pytestmark = pytest.mark.anyio


async def test_secret_is_stable_per_database_and_purpose(tmp_path: Path) -> None:
    site = site_yaml(tmp_path / "a.db")
    async with start_core(site) as core:
        links, other = await core.secret("links"), await core.secret("other")
        assert len(links) == 32 and links != other
        assert await core.secret("links") == links
    async with start_core(site) as core:
        assert await core.secret("links") == links  # restart: signed links stay valid
    async with start_core(site_yaml(tmp_path / "b.db")) as core:
        assert await core.secret("links") != links  # another database, another key
        with pytest.raises(ValueError):
            await core.secret("")
