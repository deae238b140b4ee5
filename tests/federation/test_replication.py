"""Site core → real NATS JetStream → real PostgreSQL."""

from __future__ import annotations

import pytest

from firebus.plugins import federation

from .helpers import centre_seqs, eventually, fire, query, reading, running_centre, running_site, site_seqs

pytestmark = pytest.mark.anyio


async def test_a_fire_alarm_at_the_site_appears_at_the_centre(tmp_path, nats_server, pg_dsn) -> None:
    async with running_centre(pg_dsn, nats_server.url) as centre, \
            running_site(tmp_path, "school-01", nats_server.url) as core:
        for i in range(20):
            core.bus.publish(reading(i))
        last = core.bus.publish(fire("A1"))
        rows = await eventually(lambda: query(pg_dsn, "SELECT site_id, alarm_id, transition, category, message_zh "
                                                      "FROM alarms"), what="the alarm at the centre")
        assert rows == [("school-01", "A1", "new", "fire", "火警")]
        await eventually(lambda: _same(core, pg_dsn, "school-01", last), what="every entry at the centre")
        latest = await query(pg_dsn, "SELECT point_id, num FROM latest_state WHERE site_id = 'school-01'")
        assert latest == [("p1", 19.0)]
        pub = federation.publisher_for(core)
        assert pub.metrics()["connected"] and centre.errors == 0


async def _same(core, pg, site_id, last) -> bool:
    return bool(last.seq) and await site_seqs(core) == await centre_seqs(pg, site_id)


async def test_an_undecodable_message_is_kept_and_the_rest_goes_on(tmp_path, nats_server, pg_dsn) -> None:
    import nats

    from firebus.plugins.federation import envelope
    from firebus.sdk import Event, Lane

    async with running_centre(pg_dsn, nats_server.url) as centre:
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        await js.publish("firebus.x.journal.telemetry", b"not json\t\\ at all")
        odd = reading(1, point="tab\there", value="on\\off\n")  # text needing COPY escapes
        await js.publish(envelope.subject("x", Lane.TELEMETRY),
                         envelope.encode("x", Event(data=odd, seq=7, lane=Lane.TELEMETRY)))
        await nc.close()
        await eventually(lambda: centre.quarantined == 1 and centre.ingested["telemetry"] == 1,
                         what="one kept aside, one stored")
        assert await query(pg_dsn, "SELECT body, reason <> '' FROM fed_quarantine") == \
            [(b"not json\t\\ at all", True)]
        assert await query(pg_dsn, "SELECT point_id, val FROM telemetry WHERE site_id = 'x'") == \
            [("tab\there", "on\\off\n")]
