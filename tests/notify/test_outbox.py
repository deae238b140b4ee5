"""Delivery guarantees: outage and back-off, restarts, idempotency, flood control."""

from __future__ import annotations

import pytest

from firebus.sdk import AlarmCategory, AlarmTransition, Severity

from .conftest import START, alarm, site, sms, wait_for

pytestmark = pytest.mark.anyio


def channel_states(h) -> list[tuple[str, str]]:
    return [(e.data.channel, e.data.state) for e in h.events if e.type == "NotifyChannelChanged"]


async def test_outage_backs_off_marks_channel_down_and_delivers_everything_once(make_harness, receiver, clock) -> None:
    section = site(receiver)
    section["routes"][0]["escalation"] = {"steps": [{"roles": ["duty_officer"]}]}
    h = make_harness(section)
    receiver.fail_with(503)
    async with h.running():
        for i in range(3):
            h.publish(alarm(f"A{i}", category=AlarmCategory.GAS, severity=Severity.ALARM))
        await wait_for(lambda: len(receiver.on("/sms")) >= 1, what="first attempt")
        await h.settle()
        # The whole channel backs off after a failure: one probe, not one request per message.
        assert len(receiver.on("/sms")) == 1
        attempts = 1
        for delay in (10, 20):  # exponential back-off: 10 s, 20 s …
            await clock.advance(delay - 1)
            await h.settle()
            assert len(receiver.on("/sms")) == attempts
            await clock.advance(1)
            attempts += 1
            await wait_for(lambda: len(receiver.on("/sms")) == attempts, what=f"probe {attempts}")
        await wait_for(lambda: ("sms", "down") in channel_states(h), what="sms shown down after 3 failures")
        # An hour-long outage: back-off is capped (120 s here), nothing is given up.
        for _ in range(30):
            await clock.advance(120)
            attempts += 1
            await wait_for(lambda: len(receiver.on("/sms")) >= attempts, what=f"probe {attempts}")
            attempts = len(receiver.on("/sms"))
        assert attempts < 45  # about one probe per 120 s, not a storm
        await h.settle()
        assert sms(receiver) == []
        receiver.recover()
        await clock.advance(120)
        await wait_for(lambda: len(sms(receiver)) == 3, what="backlog delivered")
        await h.settle()
        assert sorted(m["alarm"] for m in sms(receiver)) == ["A0", "A1", "A2"]
        await wait_for(lambda: [s for s in channel_states(h) if s[0] == "sms"][-1] == ("sms", "up"), what="sms up")

        async def all_sent() -> bool:
            rows = await h.rows("channel = 'sms'")
            return len(rows) == 3 and all(r["status"] == "sent" for r in rows)

        await wait_for(all_sent, what="every row recorded as sent")
        failed_results = [e for e in h.results() if not e.data.ok and e.data.channel == "sms"]
        assert failed_results and "503" in failed_results[0].data.error
        state = await h.core.storage.fetchone("SELECT state, failures FROM notify_channels WHERE key = 'sms'")
        assert state == ("up", 0)


async def test_restart_with_channel_down_loses_nothing_and_sends_nothing_twice(make_harness, receiver, clock) -> None:
    h = make_harness(site(receiver))
    async with h.running():
        h.publish(alarm("A1"))
        await wait_for(lambda: len(sms(receiver)) == 1, what="A1 sent before the outage")
        receiver.fail_with(503)
        h.publish(alarm("A2", unit_id="unit-b"))
        await wait_for(lambda: len(receiver.on("/sms")) == 2, what="A2 attempted")
        await h.settle()
    # Core down.  Meanwhile A1's 5-minute escalation falls due.
    await clock.advance(6 * 60)
    receiver.recover()
    async with h.running():
        await wait_for(lambda: len(sms(receiver)) == 4, what="A2 and both escalations after the restart")
        await wait_for(lambda: len(receiver.ok("/hook")) == 4, what="hook: A2 and both escalations")
        await h.settle()
        await clock.advance(60)
        await h.settle()
    got = sorted((m["alarm"], m["to"], m["kind"]) for m in sms(receiver))
    assert got == [("A1", "1001", "new"), ("A1", "2001", "escalate"),
                   ("A2", "1002", "new"), ("A2", "2002", "escalate")]
    hooks = sorted((r.json()["alarm_id"], r.json()["step"]) for r in receiver.ok("/hook"))
    assert hooks == [("A1", 0), ("A1", 1), ("A2", 0), ("A2", 1)]


async def test_replayed_alarm_event_after_restart_sends_nothing(make_harness, receiver) -> None:
    h = make_harness(site(receiver))
    async with h.running():
        h.publish(alarm("A1"))
        await wait_for(lambda: len(sms(receiver)) == 1 and len(receiver.ok("/hook")) == 1, what="sent")
    async with h.running():
        h.publish(alarm("A1"))  # the engine re-announcing an open alarm after a restart
        await h.settle()
    assert len(sms(receiver)) == 1 and len(receiver.ok("/hook")) == 1


async def test_message_in_flight_at_a_crash_is_sent_again_with_the_same_id(make_harness, receiver) -> None:
    h = make_harness(site(receiver))
    receiver.fail_with(503)
    async with h.running():
        h.publish(alarm("A1"))
        await wait_for(lambda: len(receiver.on("/sms")) == 1, what="attempt")

        async def failure_recorded() -> bool:
            rows = await h.rows("channel = 'sms' AND status = 'pending' AND attempts = 1")
            return len(rows) == 1

        await wait_for(failure_recorded, what="the failed attempt recorded")
        [row] = await h.rows("channel = 'sms'")
        # Simulate dying between "inflight" and the answer.
        await h.core.storage.execute("UPDATE notify_outbox SET status = 'inflight' WHERE id = ?", (row["id"],))
    receiver.recover()
    async with h.running():
        await wait_for(lambda: len(sms(receiver)) == 1, what="resent after restart")
        [after] = await h.rows("channel = 'sms'")
    assert sms(receiver)[0]["id"] == row["id"]  # receivers can drop a duplicate by this id
    assert after["status"] == "sent" and after["attempts"] == 2


async def test_flood_sends_the_first_and_digests_the_rest(make_harness, receiver, clock) -> None:
    section = site(receiver)
    section["routes"][0]["escalation"] = {"steps": [{"roles": ["duty_officer"]}]}
    h = make_harness(section)
    async with h.running():
        for i in range(12):
            h.publish(alarm(f"E{i}", category=AlarmCategory.ELECTRICAL_ALARM, severity=Severity.ALARM))
        await wait_for(lambda: len(sms(receiver)) == 5, what="burst of 5")
        await h.settle()
        # The first five by time are sent (the first is never held); the outbox sends them
        # concurrently (outbox.concurrency), so they may arrive in any order.
        assert sorted(m["alarm"] for m in sms(receiver)) == [f"E{i}" for i in range(5)]
        held = await h.rows("status = 'held' AND channel = 'sms'")
        assert len(held) == 7
        await clock.advance(300)
        await wait_for(lambda: any(m["kind"] == "digest" for m in sms(receiver)), what="digest")
        digest = [m for m in sms(receiver) if m["kind"] == "digest"][0]
        assert digest["to"] == "1001" and "7条通知" in digest["title"]
        # Group channel (webhook) was flooded too and gets its own digest.
        await wait_for(lambda: any(r.json()["kind"] == "digest" for r in receiver.ok("/hook")), what="hook digest")

        async def none_held() -> bool:
            return await h.rows("status = 'held'") == []

        await wait_for(none_held, what="held rows replaced by digests")
        assert len(await h.rows("status = 'digested' AND channel = 'sms'")) == 7


async def test_fire_alarms_are_never_held_back(make_harness, receiver) -> None:
    h = make_harness(site(receiver))
    async with h.running():
        for i in range(8):
            h.publish(alarm(f"F{i}"))
        await wait_for(lambda: len(sms(receiver)) == 8, what="every fire alarm")


async def test_held_messages_survive_a_restart_and_are_digested(make_harness, receiver, clock) -> None:
    h = make_harness(site(receiver))
    async with h.running():
        for i in range(7):
            h.publish(alarm(f"E{i}", category=AlarmCategory.ELECTRICAL_ALARM, severity=Severity.ALARM))
        await wait_for(lambda: len(sms(receiver)) == 5, what="burst")
        await wait_for(lambda: h.rows("status = 'held' AND channel = 'sms'"), what="held rows")
    async with h.running():
        await wait_for(lambda: any(m["kind"] == "digest" for m in sms(receiver)), what="digest after restart")
        await h.settle()
    kinds = [m["kind"] for m in sms(receiver)]
    assert kinds.count("digest") == 1 and kinds.count("new") == 5


async def test_acknowledge_cancels_escalations_still_waiting_in_the_outbox(make_harness, receiver, clock) -> None:
    h = make_harness(site(receiver))
    async with h.running():
        h.publish(alarm("A1"))
        await wait_for(lambda: len(sms(receiver)) == 1, what="step 0")
        receiver.fail_with(503)
        await clock.advance(5 * 60)
        await wait_for(lambda: len(receiver.on("/sms")) == 2, what="step 1 attempted")
        h.publish(alarm("A1", AlarmTransition.ACKNOWLEDGED, status="active_ack"))
        await h.settle()
        receiver.recover()
        await clock.advance(3600)
        await h.settle()
        assert [m["kind"] for m in sms(receiver)] == ["new"]
        assert [r["status"] for r in await h.rows("kind = 'escalate' AND channel = 'sms'")] == ["cancelled"]


async def test_alarm_logged_by_the_core_but_never_handled_is_replayed_at_start(make_harness, receiver) -> None:
    """The core's journal has the NEW (it was committed), our outbox has nothing: a crash in between."""
    from firebus.core.storage import Storage
    from firebus.plugins import notify
    from firebus.sdk import Context, Event

    h = make_harness(site(receiver))
    async with h.running():
        await h.settle()  # notify has its cursor
    # Committed while notify was not running (the process died before it handled them).
    async with Storage(h.db, synchronous="NORMAL").running(notify.firebus_register_migrations(None)) as storage:
        storage.append([
            Event(data=alarm("LOST"), context=Context(), time_fired=START),
            Event(data=alarm("DONE"), context=Context(), time_fired=START),
            Event(data=alarm("DONE", AlarmTransition.ACKNOWLEDGED, status="active_ack"), context=Context(),
                  time_fired=START + 1),
        ])
        await storage.barrier()
    assert sms(receiver) == []
    async with h.running():
        await wait_for(lambda: len(sms(receiver)) == 1, what="the lost alarm told after the restart")
        await h.settle()
    async with h.running():  # and only once, however often it restarts
        await h.settle()
    assert [(m["alarm"], m["to"]) for m in sms(receiver)] == [("LOST", "1001")]


async def test_finished_rows_are_purged_after_retention_pending_ones_never(make_harness, receiver, clock) -> None:
    section = site(receiver, outbox={"base_backoff_s": 10, "max_backoff_s": 3600, "retention_days": 1,
                                     "max_age_s": 7 * 86_400})
    section["routes"][0]["escalation"] = {"steps": [{"roles": ["duty_officer"]}]}
    h = make_harness(section)
    async with h.running():
        h.publish(alarm("OLD"))
        await wait_for(lambda: len(sms(receiver)) == 1 and len(receiver.ok("/hook")) == 1, what="sent")

        async def sent_recorded() -> bool:
            return len(await h.rows("status = 'sent'")) == 2

        await wait_for(sent_recorded, what="recorded")
        receiver.fail_with(503)
        h.publish(alarm("STUCK", ts=START + 1))
        await wait_for(lambda: len(receiver.on("/sms")) == 2, what="attempted")
        await clock.advance(2 * 86_400 + 3600)  # past retention and a purge pass

        async def purged() -> bool:
            return await h.rows("alarm_id = 'OLD'") == []

        await wait_for(purged, what="old rows purged")
        stuck = await h.rows("alarm_id = 'STUCK' AND channel = 'sms'")
        assert len(stuck) == 1 and stuck[0]["status"] in ("pending", "inflight")


async def test_a_burst_of_alarms_is_sent_concurrently_after_one_probe(make_harness, receiver) -> None:
    """A floor of detectors going off together: one request first, then several in flight at
    once (outbox.concurrency), not one round trip after another."""
    import threading

    section = site(receiver)
    section["outbox"] = {"concurrency": 4}
    section["rate_limit"] = {"burst": 100, "window_s": 300}
    together = threading.Barrier(4, timeout=10)  # passes only when 4 SMS are in flight at once
    queued = threading.Event()  # the probe is answered once every SMS is in the outbox
    seen = {"n": 0}
    lock = threading.Lock()

    def respond(req):
        if not req.path.startswith("/sms"):
            return 200, {"ok": True}
        with lock:
            seen["n"] += 1
            n = seen["n"]
        if n == 1:
            queued.wait(10)
            return 200, {"ok": True}  # the probe goes alone
        try:
            together.wait()
        except threading.BrokenBarrierError:
            return 500, {"error": "requests were not concurrent"}
        return 200, {"ok": True}

    receiver.respond = respond
    h = make_harness(section)
    async with h.running():
        for i in range(9):
            h.publish(alarm(f"F{i}"))

        async def all_queued() -> bool:
            return len(await h.rows("channel = 'sms'")) == 9

        await wait_for(all_queued, what="nine SMS in the outbox")
        queued.set()
        await wait_for(lambda: len(receiver.ok("/sms")) == 9, what="nine SMS delivered", timeout=30)
    assert len(receiver.on("/sms")) == 9  # none failed and was retried


def test_concurrency_is_validated() -> None:
    import msgspec

    from firebus.plugins.notify.config import OutboxConfig

    assert msgspec.convert({}, OutboxConfig).concurrency == 8
    with pytest.raises(msgspec.ValidationError, match="concurrency"):
        msgspec.convert({"concurrency": 0}, OutboxConfig)
