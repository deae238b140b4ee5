"""Helpers shared by the built-in channels (the ``Channel`` base itself is in the SDK)."""

from __future__ import annotations

import os
from typing import Any

import msgspec

from firebus.sdk.notify import Channel, ChannelContext, DeliveryError, Message

_json = msgspec.json.Encoder()

__all__ = ["Channel", "json_body", "message_json", "post_checked", "robot_result", "secret_from"]


def secret_from(options: Any, what: str = "secret") -> str:
    """A secret from ``<what>_env`` (an environment variable name) or, second best, ``<what>``."""
    env_name = getattr(options, f"{what}_env", None)
    if env_name:
        value = os.environ.get(env_name)
        if value is None:
            raise ValueError(f"{what}_env: environment variable {env_name} is not set")
        return value
    return getattr(options, what, None) or ""


def json_body(payload: Any) -> bytes:
    return _json.encode(payload)


async def post_checked(
    ctx: ChannelContext,
    url: str,
    *,
    content: bytes,
    headers: dict[str, str] | None = None,
    method: str = "POST",
    timeout: float = 15.0,
) -> Any:
    """Send one HTTP request; raise ``DeliveryError`` for transport errors and non-2xx answers."""
    import httpx

    try:
        response = await ctx.http.request(method, url, content=content, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc or 'no answer'}") from exc
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"HTTP {response.status_code}: {response.text[:200]}")
    return response


def robot_result(response: Any, *, code_fields: tuple[str, ...], msg_fields: tuple[str, ...]) -> None:
    """Group robots answer HTTP 200 with an error code in the body; non-zero is a failure."""
    try:
        body = response.json()
    except ValueError:
        raise DeliveryError(f"robot answered with non-JSON: {response.text[:200]}") from None
    if not isinstance(body, dict):
        raise DeliveryError(f"robot answered {body!r}")
    for field in code_fields:
        if field in body:
            code = body[field]
            if code not in (0, "0"):
                msg = next((body[m] for m in msg_fields if m in body), "")
                raise DeliveryError(f"robot error {code}: {msg}")
            return
    raise DeliveryError(f"robot answer has no result code: {str(body)[:200]}")


def message_json(message: Message) -> dict[str, Any]:
    """Every field, defaults included: receivers and templates should not guess what was left out."""
    return msgspec.structs.asdict(message)
