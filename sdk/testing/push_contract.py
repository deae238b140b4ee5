"""Contract suite for push drivers (``PushDriver``: JSON over MQTT, LoRaWAN uplinks …).

Most of it is about bad input: a push driver sees whatever anyone publishes on its topics,
so it must refuse garbage with ``ValueError`` (the core quarantines the payload) and never
raise anything else, down to hundreds of fuzzed copies of each real sample.
"""

from __future__ import annotations

import logging
import re
from typing import Any, ClassVar

import msgspec
import pytest

from firebus.sdk.driver import PushDriver
from firebus.sdk.manifest import API_VERSION, Manifest, sdk_compatible

from .checks import ContractDriverContext, known_point_classes
from .levels import Level, level


def valid_topic_filter(pattern: str) -> bool:
    """An MQTT subscription filter: ``+`` a whole level, ``#`` only as the last level."""
    levels = pattern.split("/")
    if not pattern:
        return False
    for i, lvl in enumerate(levels):
        if "#" in lvl and (lvl != "#" or i != len(levels) - 1):
            return False
        if "+" in lvl and lvl != "+":
            return False
    return True


def mutations(sample: bytes, rounds: int, seed: int = 1) -> list[bytes]:
    """Deterministic damaged copies of a payload: truncations, flipped bytes, swapped values."""
    import random

    rnd = random.Random(seed)
    out: list[bytes] = []
    for i in range(rounds):
        data = bytearray(sample)
        kind = i % 4
        if kind == 0 and data:
            del data[rnd.randrange(len(data)):]
        elif kind == 1 and data:
            for _ in range(rnd.randint(1, 4)):
                data[rnd.randrange(len(data))] = rnd.randrange(256)
        elif kind == 2:
            for old, new in ((b"true", b"\"yes\""), (b"false", b"null"), (b": ", b": [")):
                if old in data and rnd.random() < 0.7:
                    data = bytearray(bytes(data).replace(old, new, 1))
            digits = [j for j, c in enumerate(data) if 48 <= c <= 57]
            if digits:
                data[rnd.choice(digits)] = ord(rnd.choice('"-.e{'))
        else:
            data = bytearray(rnd.randbytes(rnd.randint(0, 64)))
        out.append(bytes(data))
    return out


@pytest.mark.anyio
class PushDriverContract:
    """Contract for ``PushDriver`` classes (JSON over MQTT, LoRaWAN uplinks …).

    Set ``driver_class`` and ``samples``: real messages as ``(topic, payload)``.
    A push driver sees whatever anyone publishes on its topics, so most of this
    suite is about bad input: it must raise ``ValueError`` with a reason (the
    core quarantines the payload) and never anything else.
    """

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    driver_class: ClassVar[type[PushDriver]]
    options: ClassVar[dict[str, Any]] = {}
    samples: ClassVar[list[tuple[str, bytes]]] = []
    bad_samples: ClassVar[list[tuple[str, bytes]]] = []
    manifest: ClassVar[Manifest | None] = None
    plugin: ClassVar[Any] = None
    extra_point_classes: ClassVar[tuple[str, ...]] = ()
    fuzz_rounds: ClassVar[int] = 400

    def make(self) -> Any:
        ctx = ContractDriverContext(None, logging.getLogger(f"firebus.contract.{self.driver_class.type_key}"))
        return self.driver_class(msgspec.convert(self.options, self.driver_class.Options), ctx)

    def decode_checked(self, driver: Any, topic: str, payload: bytes) -> list[Any]:
        """Decode; a ``ValueError`` is the accepted way to refuse, anything else fails the test."""
        from firebus.sdk.driver import DeviceReport

        try:
            reports = driver.decode(topic, payload)
        except ValueError:
            return []
        except Exception as exc:  # noqa: BLE001 — the point of the check
            raise AssertionError(f"decode({topic!r}, {payload[:80]!r}) raised {type(exc).__name__}: {exc} "
                                 "(refuse bad input with ValueError)") from exc
        assert isinstance(reports, list) and all(isinstance(r, DeviceReport) for r in reports), reports
        return reports

    @level(Level.BRONZE)
    def test_declaration(self) -> None:
        cls = self.driver_class
        assert isinstance(getattr(cls, "type_key", None), str) and "." in cls.type_key, (
            "type_key must be namespaced (plugin.model)")
        subs = self.make().subscriptions()
        assert subs, "no subscriptions"
        bad = [s for s in subs if not valid_topic_filter(s)]
        assert not bad, f"invalid MQTT topic filters: {bad}"
        if self.manifest is not None:
            assert sdk_compatible(self.manifest.requires_sdk, API_VERSION)

    @level(Level.BRONZE)
    def test_samples_decode_to_declared_points(self) -> None:
        assert self.samples, "give at least one real message in samples"
        driver = self.make()
        known = known_point_classes(self.extra_point_classes, self.manifest, self.plugin)
        for topic, payload in self.samples:
            reports = driver.decode(topic, payload)
            assert reports, f"sample on {topic} decoded to nothing"
            for report in reports:
                assert report.identifiers and all(report.identifiers.values()), "empty identity"
                specs = {p.key: p for p in driver.points_for(report)}
                stray = sorted({r.point_key for r in report.readings} - set(specs))
                assert not stray, f"readings for undeclared points: {stray}"
                unknown = sorted({p.point_class for p in specs.values()} - known)
                assert not unknown, f"unknown point classes {unknown}: use firebus.sdk.PointClass or declare them"

    @level(Level.SILVER)
    def test_identity_is_stable_and_not_an_address(self) -> None:
        driver = self.make()
        for topic, payload in self.samples:
            first = [r.identifiers for r in driver.decode(topic, payload)]
            again = [r.identifiers for r in self.make().decode(topic, payload)]
            assert first == again, f"identity differs between decodes: {first} → {again}"
            for ids in first:
                for key, value in ids.items():
                    assert not re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}(:\d+)?", value), (
                        f"identifier {key}={value!r} is an address")

    @level(Level.SILVER)
    def test_malformed_payloads_are_refused_with_value_error(self) -> None:
        driver = self.make()
        topic = self.samples[0][0] if self.samples else "x"
        garbage = [b"", b"{", b"null", b"[]", b"42", b'"text"', b"\xff\xfe\x00", b'{"unrelated": 1}',
                   b'{"a": ' * 200 + b"1" + b"}" * 200]
        for payload in garbage:
            self.decode_checked(driver, topic, payload)
        for t, payload in self.bad_samples:
            self.decode_checked(driver, t, payload)
        for t, payload in self.samples:
            self.decode_checked(driver, "not/" + t + "/theirs", payload)

    @level(Level.GOLD)
    def test_fuzzed_payloads_never_crash_the_decoder(self) -> None:
        driver = self.make()
        for t, payload in self.samples:
            for damaged in mutations(payload, self.fuzz_rounds):
                self.decode_checked(driver, t, damaged)
