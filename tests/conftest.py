"""Suite-wide fixtures.  Area fixtures live in each tests/<area>/conftest.py."""

import os
import tempfile

import pytest

# Parsed site files are cached per user (core/config_cache.py); the suite keeps its own
# cache, away from the developer's, and gone with the run.
_CACHE = tempfile.TemporaryDirectory(prefix="firebus-test-cache-")
os.environ.setdefault("FIREBUS_CACHE_DIR", _CACHE.name)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
