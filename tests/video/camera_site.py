"""A running core with cameras, the panel app and users: shared by the camera tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

PASSWORD = "correct horse battery staple"


@dataclass
class Site:
    core: Any
    app: Any
    auth: Any
    tokens: dict[str, str] = field(default_factory=dict)
    tracks: list[Any] = field(default_factory=list)  # VideoTrackChanged events seen on the bus

    def device(self, key: str) -> str:
        return self.core.device_ids[key]

    def client(self, who: str | None = None, **kw: Any) -> httpx.AsyncClient:
        kw.setdefault("base_url", "http://panel")
        if who:
            kw.setdefault("headers", {})["Authorization"] = f"Bearer {self.tokens[who]}"
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), **kw)


async def wait_until(predicate: Any, timeout: float = 15.0, step: float = 0.05) -> None:
    """Poll ``predicate`` (sync or async) until it is true; fail after ``timeout`` seconds."""
    with anyio.fail_after(timeout):
        while True:
            result = predicate()
            if hasattr(result, "__await__"):
                result = await result
            if result:
                return
            await anyio.sleep(step)
