"""The 16 reference frames shipped with the plugin (``vectors.txt``, a copy of
/work/shared/reference/gb26875-3-vectors.txt): for the simulators, the CLI and tests."""

from __future__ import annotations

from importlib import resources

import msgspec


class Vector(msgspec.Struct, frozen=True):
    name: str
    hex: str
    meaning: str

    @property
    def data(self) -> bytes:
        return bytes.fromhex(self.hex)


def parse_vectors(text: str) -> list[Vector]:
    """``NAME<TAB>HEX<TAB>meaning`` lines; lines starting with ``#`` are comments."""
    out: list[Vector] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, hexstr, meaning = line.split("\t")
        out.append(Vector(name, hexstr, meaning))
    return out


def load_vectors() -> list[Vector]:
    text = resources.files("firebus.plugins.gb26875").joinpath("vectors.txt").read_text("utf-8")
    return parse_vectors(text)
