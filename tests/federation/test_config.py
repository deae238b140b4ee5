"""The federation: section: errors name the file, the line and the field."""

from __future__ import annotations

import pytest

from firebus.core.cli import main
from firebus.plugins.federation.config import FederationConfigError, load_config
from firebus.sdk.testing.harness import site_yaml


def _check(tmp_path, section: str, capsys) -> tuple[int, str]:
    path = tmp_path / "site.yaml"
    path.write_text(site_yaml(tmp_path / "s.db", extra="federation:\n" + section))
    code = main(["check", str(path)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("section, field, words", [
    ("  site_id: school 01\n  servers: [nats://c:4222]\n", "federation.site_id", "NATS subject token"),
    ("  site_id: s1\n  servers: [http://c:4222]\n", "federation.servers[0]", "not a nats://"),
    ("  site_id: s1\n", "federation.servers", "required"),
    ("  site_id: s1\n  servers: [nats://c:4222]\n  credentials: /nonexistent.creds\n",
     "federation.credentials", "no readable file"),
    ("  site_id: s1\n  servers: [nats://c:4222]\n  stream_name: X\n", "federation.stream_name", "unknown field"),
    ("  site_id: s1\n  servers: [nats://c:4222]\n  max_unacked: lots\n", "federation.max_unacked", "Expected `int`"),
])
def test_bad_sections_name_file_line_and_field(tmp_path, capsys, section, field, words) -> None:
    code, err = _check(tmp_path, section, capsys)
    assert code == 2
    line = next((ln for ln in err.splitlines() if "site.yaml:" in ln and "federation" in ln), err)
    assert "site.yaml:" in line and f": {field}: " in line and words in line, line
    assert "Traceback" not in err
    lineno = int(line.split("site.yaml:")[1].split(":")[0])
    text = (tmp_path / "site.yaml").read_text().splitlines()
    assert text[lineno - 1].strip().startswith(("federation", field.split(".")[-1].split("[")[0])), text[lineno - 1]


def test_a_good_section_passes_and_has_defaults(tmp_path, capsys) -> None:
    creds = tmp_path / "site.creds"
    creds.write_text("-----BEGIN NATS USER JWT-----\n")
    code, err = _check(tmp_path, f"  site_id: s-1\n  servers: [nats://c:4222, tls://d:4222]\n"
                                 f"  credentials: {creds}\n", capsys)
    assert code == 0, err
    cfg = load_config({"site_id": "s-1", "servers": ["nats://c:4222"]})
    assert (cfg.stream, cfg.max_unacked, cfg.ack_timeout_s, cfg.batch_max) == ("FIREBUS", 10_000, 5.0, 1000)


def test_errors_carry_chinese_too() -> None:
    with pytest.raises(FederationConfigError) as exc:
        load_config({"site_id": "a b", "servers": ["nats://c"]})
    assert exc.value.zh and "NATS" in exc.value.zh
