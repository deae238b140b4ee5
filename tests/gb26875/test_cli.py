"""``firebus gb26875 decode|encode|vectors``: exit codes, JSON, bilingual output, and the
documentation's JSON examples encode to the hex printed next to them."""

from __future__ import annotations

import argparse
import io
import json
import re

import pytest

from firebus.plugins.gb26875.cli import add_commands

from .conftest import ROOT, run_cli

DOC = ROOT / "docs" / "plugins" / "gb26875.md"


def doc_examples() -> list[tuple[dict, str]]:
    text = DOC.read_text(encoding="utf-8")
    pairs = re.findall(r"```json\n(.*?)```\s*```hex\n(.*?)```", text, flags=re.S)
    return [(json.loads(j), h.strip()) for j, h in pairs]


def cli(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    """The same commands in-process (a subprocess per case would cost ~1 s each)."""
    parser = argparse.ArgumentParser(prog="firebus")
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["gb26875", *argv])
    out, err = io.StringIO(), io.StringIO()
    import contextlib
    import sys

    old_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = args.func(args)
    finally:
        sys.stdin = old_stdin
    return code, out.getvalue(), err.getvalue()


def test_docs_have_examples() -> None:
    assert len(doc_examples()) >= 5


@pytest.mark.parametrize("example, expected", doc_examples(),
                         ids=[f"example{i}" for i in range(len(doc_examples()))])
def test_doc_examples_encode_as_documented(example: dict, expected: str) -> None:
    code, out, err = cli("encode", json.dumps(example, ensure_ascii=False))
    assert (code, err) == (0, "") and out.strip() == expected
    # and decoding gives the example back (every key given is in the decoded JSON, same value)
    code, out, _ = cli("decode", expected, "--json")
    decoded = json.loads(out)
    for key in ("serial", "time", "source", "destination"):
        assert decoded[key] == example[key]


def test_decode_subprocess_human_output(vectors) -> None:
    r = run_cli("gb26875", "decode", vectors["A1_upload_component_fire"].hex)
    assert r.returncode == 0, r.stderr
    for text in ("流水号 serial: 1", "889", "88888", "发送数据 send data", "感烟火灾探测器 smoke detector",
                 "测试、火警 / test, fire alarm", "2012-09-26 09:58:02", "火警 FIRE ALARM", "0A000200"):
        assert text in r.stdout


def test_decode_json_then_encode_round_trip_subprocess(vectors) -> None:
    m1 = vectors["M1_real_capture_photoelectric_fire"].hex
    decoded = run_cli("gb26875", "decode", m1, "--json", "--tolerant")
    assert decoded.returncode == 0, decoded.stderr
    j = json.loads(decoded.stdout)
    assert [w["code"] for w in j["warnings"]] == ["version", "text_padding", "clock_skew"]
    obj = j["adu"]["objects"][0]
    assert obj["description"] == "1号接口板1回路1号" and obj["component_type_en"] == "point photoelectric smoke detector"
    encoded = run_cli("gb26875", "encode", "--tolerant", stdin=decoded.stdout)
    assert encoded.returncode == 0 and encoded.stdout.strip() == m1


def test_invalid_frame_exits_1_with_the_reason_subprocess(vectors) -> None:
    a1 = bytearray(vectors["A1_upload_component_fire"].data)
    a1[40] ^= 1
    r = run_cli("gb26875", "decode", a1.hex())
    assert r.returncode == 1 and r.stdout == ""
    assert "checksum" in r.stderr and "75" in r.stderr and "校验和" in r.stderr
    r = run_cli("gb26875", "decode", a1.hex(), "--json")
    assert r.returncode == 1
    error = json.loads(r.stdout)["error"]
    assert (error["code"], error["field"], error["offset"]) == ("checksum", "checksum", 75)
    assert error["zh"] and error["en"]


def test_strict_pitfall_exits_1_tolerant_exits_0(vectors) -> None:
    m1 = vectors["M1_real_capture_photoelectric_fire"].hex
    code, out, err = cli("decode", m1)
    assert code == 1 and "version_main" in err and "--tolerant" in err
    code, out, err = cli("decode", m1, "--tolerant")
    assert code == 0 and "警告 warning [version]" in out and "1号接口板1回路1号" in out


def test_decode_accepts_spaced_hex_and_stdin(vectors) -> None:
    spaced = " ".join(re.findall("..", vectors["B1_upload_uitd_mains_fault"].hex))
    code, out, _ = cli("decode", spaced)
    assert code == 0 and "主电故障 / test, main-power fault" in out
    code, out, _ = cli("decode", "-", stdin=spaced + "\n")
    assert code == 0 and "主电故障" in out


@pytest.mark.parametrize("bad", ["zz", "4040", "", "4040000001"])
def test_not_a_frame(bad: str) -> None:
    code, out, err = cli("decode", bad, "--json")
    assert code == 1 and "error" in json.loads(out)


def test_stream_mode(vectors) -> None:
    stream = "FFFF" + vectors["A1_upload_component_fire"].hex + vectors["B1_upload_uitd_mains_fault"].hex
    code, out, _ = cli("decode", stream, "--stream", "--json")
    items = json.loads(out)
    assert code == 1  # the garbage in front is reported
    assert [i.get("error", {}).get("code") for i in items] == ["garbage", None, None]
    assert items[1]["adu"]["type"] == 2 and items[2]["adu"]["type"] == 21


@pytest.mark.parametrize("doc, field", [
    ({"source": 889, "destination": 88888}, "command"),
    ({"command": 2, "destination": 88888}, "source"),
    ({"command": 2, "source": 889, "destination": 88888, "sauce": 1}, "sauce"),
    ({"command": "sned", "source": 889, "destination": 88888}, "command"),
    ({"command": 2, "source": 889, "destination": 88888, "time": "yesterday"}, "time"),
    ({"command": 2, "source": 889, "destination": 88888,
      "adu": {"type": 21, "objects": [{"state": 1, "flags": ["fire_alarm"]}]}}, "adu.objects[0].flags"),
    ({"command": 2, "source": 889, "destination": 88888,
      "adu": {"type": 21, "objects": [{"flags": ["smoke"]}]}}, "adu.objects[0].flags"),
    ({"command": 2, "source": 889, "destination": 88888, "adu": {"type": 2, "objects": [{"system_type": 1}]}},
     "adu.objects[0].system_address"),
    ({"command": 2, "source": 889, "destination": 88888,
      "adu": {"type": 3, "objects": [{"system_type": 1, "system_address": 1, "component_type": 17,
                                      "component_address": 1, "analog_type": 3, "value": 4000}]}}, "value"),
    ({"command": 2, "source": 889, "destination": 88888, "adu": {"type": 2, "raw": "00"}}, "adu.raw"),
    ({"command": 2, "source": 889, "source_hex": "000000000000", "destination": 88888}, "source_hex"),
])
def test_encode_errors_name_the_key(doc: dict, field: str) -> None:
    code, out, err = cli("encode", json.dumps(doc), "--json")
    assert code == 1
    error = json.loads(out)["error"]
    assert error["field"].startswith(field) or field in error["field"], error
    code, out, err = cli("encode", json.dumps(doc))
    assert code == 1 and err.startswith("错误 error:")


def test_encode_defaults_and_forms() -> None:
    base = {"time": "2026-05-01 08:00:00", "command": 2}
    by_int = cli("encode", json.dumps(base | {"source": 889, "destination": 88888}))[1]
    by_hex = cli("encode", json.dumps(base | {"source_hex": "790300000000", "destination": "385B01000000"}))[1]
    assert by_int == by_hex
    frame = bytes.fromhex(by_int.strip())
    assert frame[2:4] == b"\x00\x00" and frame[4:6] == b"\x01\x01"  # serial 0, version 1.1 by default
    # state by number or by flag names; the object time defaults to the frame time
    a = cli("encode", json.dumps(base | {"source": 1, "destination": 2, "adu": {"type": 21, "objects": [
        {"state": 3}]}}))[1]
    b = cli("encode", json.dumps(base | {"source": 1, "destination": 2, "adu": {"type": "uitd_state", "objects": [
        {"flags": ["normal", "fire_alarm"], "time": "2026-05-01 08:00:00"}]}}))[1]
    assert a == b
    code, out, _ = cli("encode", json.dumps([base | {"source": 889, "destination": 88888, "serial": n}
                                             for n in (5, 6)]), "--json")
    lines = [bytes.fromhex(json.loads(line)["hex"]) for line in out.splitlines()]
    assert code == 0 and [f[2] for f in lines] == [5, 6] and all(f[4:26] == frame[4:26] for f in lines)


def test_strict_encode_refuses_what_tolerant_builds() -> None:
    doc = {"command": 2, "source": 1, "destination": 2, "version_main": 16, "time": "2026-05-01 08:00:00"}
    assert cli("encode", json.dumps(doc))[0] == 1
    code, out, _ = cli("encode", json.dumps(doc), "--tolerant")
    assert code == 0 and bytes.fromhex(out.strip())[4] == 16


def test_vectors_listing() -> None:
    code, out, _ = cli("vectors", "--json")
    assert code == 0 and len(json.loads(out)) == 16
