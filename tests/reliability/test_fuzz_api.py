"""Hypothesis fuzzing of HTTP API requests on a running core: never a 5xx, the core keeps serving.

Random bodies (bytes, JSON of any shape), content types, alarm ids and query
strings against the alarm action endpoints and the listings, as an admin with
a bearer token (so requests get past authentication and reach the handlers),
through the real Starlette app over httpx's ASGI transport.  A real alarm
exists (a 95 °C reading through the registry, ingest and the alarm engine),
so action bodies reach the engine too.  Afterwards the alarm is still
consistent and ``/api/health`` answers 200.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firebus.core.runtime import running_core
from firebus.core.web import AuthStore, create_app, web_plugin
from firebus.sdk import PointSpec, Reading
from firebus.sdk.testing.mosquitto import free_port

from .relcore import Plugin

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=8,
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"note": json_values, "verdict": json_values}).map(lambda v: json.dumps(v).encode()),
)
requests = st.tuples(
    st.sampled_from(["ack", "silence", "verdict", "list", "get", "history", "devices"]),
    st.one_of(st.just("REAL"), st.text(max_size=40)),
    bodies,
    st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain", "", "multipart/form-data"]),
    st.dictionaries(st.sampled_from(["status", "limit", "offset", "unit", "category", "from", "to", "step"]),
                    st.text(max_size=20), max_size=3),
)


def web_plugins() -> dict:
    import inspect

    from firebus.core import runtime

    source = inspect.getsource(runtime)
    return {} if ("WEB_MIGRATIONS" in source or "web_plugin" in source) else {"web": web_plugin}


async def run(tmp: Path, batch: list[tuple]) -> list[tuple[str, int, str]]:
    site = (
        f"storage: {{path: '{tmp / 'fb.db'}', synchronous: NORMAL}}\n"
        # a broker nobody listens on: the device's readings come in through ingest below
        f"transports:\n  - {{key: mqtt, type: mqtt, options: {{port: {free_port()}}}}}\n"
        "devices:\n  - {key: cable, driver: rel.temp, transport: mqtt, identifiers: {serial: cable}}\n"
    )
    failures: list[tuple[str, int, str]] = []
    async with running_core(site, extra_plugins={"rel": Plugin(), **web_plugins()}, autoload=False) as core:
        auth = AuthStore(core.storage)
        await auth.create_user("fuzz-admin", "admin", password="correct horse battery staple 42")
        token, _ = await auth.create_token("fuzz-admin", label="fuzz")
        device = core.registry.devices[core.device_ids["cable"]]
        await core.registry.ensure_points(device.id, [PointSpec(key="t", point_class="temperature", unit="°C")])
        await core.ingest.ingest(device, [Reading(point_key="t", value=95.0)])
        with anyio.fail_after(20):
            while not core.alarms.open_alarms():
                await anyio.sleep(0.02)
        alarm_id = core.alarms.open_alarms()[0].id
        app = create_app(core)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://panel",
                                     headers=headers) as client:
            for action, ident, body, ctype, query in batch:
                ident = alarm_id if ident == "REAL" else quote(ident, safe="")
                if action in ("ack", "silence", "verdict"):
                    url = f"/api/alarms/{ident}/{action}"
                    resp = await client.post(url, content=body, headers={"Content-Type": ctype} if ctype else {},
                                             params=query)
                elif action == "list":
                    url = "/api/alarms"
                    resp = await client.get(url, params=query)
                elif action == "get":
                    url = f"/api/alarms/{ident}"
                    resp = await client.get(url, params=query)
                elif action == "history":
                    url = f"/api/points/{ident}/history"
                    resp = await client.get(url, params=query)
                else:
                    url = "/api/devices"
                    resp = await client.get(url, params=query)
                if resp.status_code >= 500:
                    failures.append((url, resp.status_code, resp.text[:300]))
            health = await client.get("/api/health")
            assert health.status_code == 200
        alarm = await core.alarms.get(alarm_id)
        assert alarm is not None and alarm.active  # no body could clear it through ack/silence/verdict
    return failures


@pytest.mark.slow
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batch=st.lists(requests, min_size=40, max_size=80))
def test_api_fuzz_never_answers_5xx(tmp_path_factory, batch: list[tuple]) -> None:
    failures = anyio.run(run, tmp_path_factory.mktemp("api"), batch)
    assert not failures, failures[:5]
