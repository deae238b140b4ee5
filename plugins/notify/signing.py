"""Request signatures: our own webhooks, DingTalk and Feishu/Lark robots.

Pure functions so a receiver (and the tests) can check them the same way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote_plus


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, "<timestamp>.<body>").

    The timestamp is inside the MAC so a captured request cannot be replayed
    later with a fresh timestamp header (the scheme Stripe and GitHub use).
    """
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk custom robot 加签: base64(HMAC-SHA256(key=secret, "<ts>\\n<secret>")), url-encoded.

    The result goes into the query string as ``&timestamp=<ts>&sign=<this>``;
    DingTalk rejects timestamps more than an hour from its own clock.
    """
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(mac).decode())


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu/Lark custom bot 签名校验: base64(HMAC-SHA256(key="<ts>\\n<secret>", msg=b"")).

    Note the reversal against DingTalk: the string is the *key* and the message
    is empty.  ``timestamp`` (seconds, as a string) and ``sign`` go in the JSON body.
    """
    mac = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(mac).decode()
