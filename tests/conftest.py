"""Suite-wide fixtures.  Area fixtures live in each tests/<area>/conftest.py."""

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
