"""Reading profile files (register maps, payload maps): YAML or TOML text → plain data.

Profiles are data, not code, so vendors add a model by adding a file; both
profile kinds (``firebus.sdk.modbus``, ``firebus.sdk.jsonmap``) read them here.
"""

from __future__ import annotations

import tomllib
from typing import Any


class ProfileError(ValueError):
    """A profile (register map or payload map) is invalid; the message names the file and the field."""


def parse_profile_data(text: str, filename: str, source: str, error: type[Exception] = ProfileError) -> Any:
    """Parse by file extension (``.toml``, else YAML); syntax errors raise ``error("source: …")``."""
    if filename.endswith(".toml"):
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise error(f"{source}: {exc}") from None
    import yaml  # core dependency; imported lazily so TOML-only users don't pay for it

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{source}: {exc}") from None
