"""``firebus sim uitd`` ↔ ``firebus sim centre`` as separate processes over real TCP on 127.0.0.1:
confirm, deny, timeout and resend, link fault after the resends, a fire alarm ahead of queued
state traffic, queries, clock sync and a duty check answered; and the simulators' hook."""

from __future__ import annotations

import argparse

import pluggy

import firebus.plugins.gb26875 as gb26875
from firebus.sdk import hookspecs


def _port(centre) -> str:
    return str(centre.event("listening")["port"])


def test_simulators_are_registered_through_the_hook() -> None:
    pm = pluggy.PluginManager("firebus")
    pm.add_hookspecs(hookspecs)
    pm.register(gb26875, name="gb26875")
    parser = argparse.ArgumentParser(prog="firebus sim")
    sub = parser.add_subparsers()
    pm.hook.firebus_register_simulators(sim=sub)
    args = parser.parse_args(["uitd", "--port", "1", "--fire", "--timeout", "2"])
    assert args.func is not None and args.fire and args.timeout == 2.0
    args = parser.parse_args(["centre", "--deny-first", "2", "--allow", "h:790300000000"])
    assert args.deny_first == 2 and args.allow == [bytes.fromhex("790300000000")]


def test_vectors_and_a_fire_alarm_ahead_of_queued_state_traffic(sims) -> None:
    centre = sims("centre", "--json", "--delay", "0.02")
    uitd = sims("uitd", "--port", _port(centre), "--json", "--vectors", "--burst", "15", "--fire")
    assert uitd.finish() == 0, uitd.stderr
    summary = uitd.event("summary")
    assert summary["submitted"] == 6 + 15 + 1 and summary["confirmed"] == 22
    frames = [e for e in centre.wait_for(lambda e: e.get("event") == "frame" and e["frame"]["adu"], count=22)]
    # on the wire: A1, M1 and the new fire alarm first, whatever was queued before them
    first = [e["priority"] for e in uitd.events if e.get("event") == "sent" and e["key"] != "heartbeat"]
    assert first[:3] == ["fire"] * 3 and "fire" not in first[3:]
    # at the centre (fire alarms have a handler lane of their own): all three handled while the
    # state traffic is still queued
    fire_positions = [i for i, e in enumerate(frames) if e["fire"]]
    assert len(fire_positions) == 3 and max(fire_positions) < 6
    assert all(e["reply"] == "confirm" for e in frames)
    m1 = next(e for e in frames if e["frame"]["source"] == 889 and
              (e["frame"]["adu"]["objects"][0].get("description") == "1号接口板1回路1号"))
    assert m1["fire"]
    # every confirm echoes the serial it answers
    replied = {e["serial"] for e in centre.events if e.get("event") == "replied"}
    assert {e["serial"] for e in frames} <= replied


def test_deny_on_demand_then_confirmed(sims) -> None:
    centre = sims("centre", "--json", "--deny-first", "2")
    uitd = sims("uitd", "--port", _port(centre), "--json", "--fire", "--timeout", "2")
    assert uitd.finish() == 0, uitd.stderr
    answered = uitd.event("answered", key="fire")
    assert answered["status"] == "confirmed" and answered["attempts"] == 3
    replies = [e["reply"] for e in centre.events if e.get("event") == "frame" and e["fire"]]
    assert replies == ["deny", "deny", "confirm"]


def test_timeout_and_resend(sims) -> None:
    centre = sims("centre", "--json", "--drop-first", "2")
    uitd = sims("uitd", "--port", _port(centre), "--json", "--fire", "--timeout", "0.3")
    assert uitd.finish() == 0, uitd.stderr
    answered = uitd.event("answered", key="fire")
    assert answered["status"] == "confirmed" and answered["attempts"] == 3 and answered["latency_ms"] >= 600
    sent = [e for e in uitd.events if e.get("event") == "sent" and e["key"] == "fire"]
    assert [e["attempt"] for e in sent] == [1, 2, 3] and len({e["hex"] for e in sent}) == 1  # same bytes


def test_link_fault_after_the_resends(sims) -> None:
    centre = sims("centre", "--json", "--drop-all")
    uitd = sims("uitd", "--port", _port(centre), "--json", "--fire", "--timeout", "0.2", "--resends", "3",
                "--duration", "2.5")
    fault = uitd.event("link_fault")
    assert "no answer after 4 attempts" in fault["reason"]
    sent = [e for e in uitd.events if e.get("event") == "sent" and e["attempt"] == 4]
    assert sent  # 1 + 3 resends before the fault
    assert uitd.finish() == 1  # the upload was never confirmed
    summary = uitd.event("summary")
    assert summary["connections"] >= 2 and summary.get("confirmed", 0) == 0  # it reconnected to try again


def test_queries_clock_sync_and_duty_check(sims) -> None:
    centre = sims("centre", "--json", "--stdin", stdin=True)
    uitd = sims("uitd", "--port", _port(centre), "--json", "--stay", "--duty-answer-after", "0.2", "--stdin",
                stdin=True)
    centre.event("frame")  # the UITD's announce heartbeat: it is connected
    centre.send("query 81")
    result = centre.event("result", type=81)
    assert result["status"] == "responded" and result["reply"]["adu"]["type"] == 21
    centre.send("query 62 1 1 65537")
    state = centre.event("result", type=62)["reply"]["adu"]["objects"][0]
    assert state["component_type"] == 42 and state["component_address_hex"] == "01000100"
    centre.send("sync 2030-01-02 03:04:05")
    assert centre.event("result", type=90)["status"] == "confirmed"
    centre.send("query 88")
    clock = centre.event("result", type=88)["reply"]["adu"]["objects"][0]["time"]
    assert clock.startswith("2030-01-02 03:0")  # the UITD's clock follows the centre's
    centre.send("duty")
    assert centre.event("result", type=91)["status"] == "confirmed"
    answer = centre.wait_for(lambda e: e.get("event") == "frame" and (e["frame"]["adu"] or {}).get("type") == 24)[0]
    assert answer["frame"]["adu"]["objects"][0]["flags"] == ["duty_check_answered"]
    uitd.send("quit")
    centre.send("quit")
    assert centre.finish() == 0
    uitd.finish()
