"""The parsed-site-file cache: an unchanged file starts without YAML, any change parses afresh."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from firebus.core import config, config_cache
from firebus.core.config import ConfigError, load_file

SITE = """\
site: {name: Cache school}
storage: {path: fb.db}
transports:
  - key: mqtt
    type: mqtt
    options:
      port: ${MQTT_PORT:-1883}
      password: "${MQTT_SECRET}"
devices:
  - {key: s1, driver: smoke.generic, transport: mqtt, identifiers: {serial: A1}}
"""


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(config_cache.ENV_DIR, str(folder))
    monkeypatch.delenv(config_cache.ENV_OFF, raising=False)
    return folder


def no_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("the YAML parser ran")

    monkeypatch.setattr(config.yaml, "compose", refuse)


def test_unchanged_file_loads_from_the_cache_with_the_same_result(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(SITE)
    env = {"MQTT_SECRET": "s3cret"}
    first = load_file(site, env=env)
    [entry] = list(cache.glob("*.msgpack"))
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600  # it holds substituted secrets
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    no_yaml(monkeypatch)
    second = load_file(site, env=env)
    assert second.site == first.site and second.raw == first.raw
    assert second.site.transports[0].options["port"] == 1883  # "${MQTT_PORT:-1883}" stayed an int
    assert second.path == site


def test_an_environment_change_or_an_edit_parses_afresh(cache: Path, tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(SITE)
    a = load_file(site, env={"MQTT_SECRET": "one"})
    b = load_file(site, env={"MQTT_SECRET": "two", "MQTT_PORT": "8883"})
    assert a.site.transports[0].options["password"] == "one"
    assert b.site.transports[0].options == {"port": 8883, "password": "two"}
    site.write_text(SITE.replace("Cache school", "Edited school"))
    c = load_file(site, env={"MQTT_SECRET": "two"})
    assert c.site.site.name == "Edited school"
    assert len(list(cache.glob("*.msgpack"))) == 3


def test_a_corrupt_entry_is_ignored(cache: Path, tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(SITE)
    first = load_file(site, env={"MQTT_SECRET": "x"})
    [entry] = list(cache.glob("*.msgpack"))
    entry.write_bytes(b"\xc1 not msgpack")
    assert load_file(site, env={"MQTT_SECRET": "x"}).site == first.site


def test_an_invalid_file_is_never_cached_and_keeps_its_line(cache: Path, tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(SITE.replace("storage: {path: fb.db}", "storage: {path: fb.db, colour: red}"))
    for _ in range(2):
        with pytest.raises(ConfigError) as exc:
            load_file(site, env={"MQTT_SECRET": "x"})
        assert exc.value.line == 2 and "colour" in str(exc.value)
    assert not list(cache.glob("*.msgpack"))


def test_a_document_msgpack_cannot_carry_is_not_cached(cache: Path, tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(SITE.replace("site: {name: Cache school}", "site: {name: Cache school}\nx-notes: !!set {a, b}"))
    try:
        load_file(site, env={"MQTT_SECRET": "x"})
    except ConfigError:
        pass  # whether the key is allowed is not the point: nothing inexact is stored
    assert not list(cache.glob("*.msgpack"))


def test_an_unwritable_cache_only_means_parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("")
    monkeypatch.setenv(config_cache.ENV_DIR, str(blocker / "cache"))
    site = tmp_path / "site.yaml"
    site.write_text(SITE)
    assert load_file(site, env={"MQTT_SECRET": "x"}).site.site.name == "Cache school"


def test_the_cache_can_be_turned_off(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config_cache.ENV_OFF, "1")
    site = tmp_path / "site.yaml"
    site.write_text(SITE)
    load_file(site, env={"MQTT_SECRET": "x"})
    assert not cache.exists()


def test_old_entries_are_pruned(cache: Path, tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    for i in range(config_cache.KEEP + 3):
        site.write_text(SITE.replace("Cache school", f"School {i}"))
        load_file(site, env={"MQTT_SECRET": "x"})
        newest = max(cache.glob("*.msgpack"), key=lambda p: p.stat().st_mtime)
        os.utime(newest, (1_000_000 + i, 1_000_000 + i))
    assert len(list(cache.glob("*.msgpack"))) == config_cache.KEEP
    assert yaml  # imported for the monkeypatch target's module
