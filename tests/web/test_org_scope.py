"""Scope follows organisations everywhere: a generated walk over every GET path of the OpenAPI
document, every GET route the plugins mount under /-/plugins/, and the event stream, for one
user of each role, on a real core with every built-in plugin, over a real HTTP socket.

The site: a county fire brigade over two towns of two units each; an education regulator
covering one unit of each town; a maintenance company serving one unit of each town; and a
fifth unit no organisation covers (only admin and integrator see it).  Every unit has a
detector in alarm, an inspection checkpoint and a hazard.

The check is the same for every response: the units whose things (unit, place, device, point,
alarm, hazard ids and keys, names) appear in what a user gets are exactly the units the admin
gets in the same response, cut to the user's scope; an object of another unit is 404.  It
fails if one scope check anywhere is removed (docs/supervision.md says how it was checked).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

import anyio
import httpx
import pytest
from starlette.routing import Mount, Route

from firebus.core.config import load_text
from firebus.core.runtime import running_core
from firebus.core.web import AuthStore, serve
from firebus.sdk import PlaceKind, new_id

from .conftest import VALUES, WebTestPlugin, wait_until

pytestmark = pytest.mark.anyio

UNITS = ("ua1", "ua2", "ub1", "ub2", "uz9")
TOWN = {"ua1": "a", "ua2": "a", "ub1": "b", "ub2": "b"}

ORGS = """
organisations:
  - key: county
    name: 某县消防救援大队
    name_en: County fire brigade
    kind: fire_brigade
    children:
      - {key: town_a, name: 甲镇, name_en: Town A, kind: town, units: [ua1, ua2]}
      - {key: town_b, name: 乙街道, name_en: Street B, kind: town, units: [ub1, ub2]}
  - {key: edu, name: 县教育局, name_en: Education bureau, kind: regulator, units: [ua1, ub1]}
  - {key: maint, name: 安达维保, name_en: Anda maintenance, kind: maintenance, units: [ua2, ub2]}
"""


def site_yaml(db: Path) -> str:
    units, devices, checkpoints = [], [], []
    for u in UNITS:
        n = u.upper()
        units.append(f"""
  - key: {u}
    name: UNITNAME-{n}
    kind: school
    geo: {{lat: 30.{len(units)}, lon: 120.5}}
    buildings:
      - key: {u}-bld
        name: BLDNAME-{n}
        floors:
          - key: {u}-f1
            name: FLOORNAME-{n}
            level: 1
            locations: [{{key: {u}-room, name: ROOMNAME-{n}}}]""")
        devices.append(f"  - {{key: {u}-det, driver: webtest.detector, location: {u}-room, name: DEVNAME-{n},"
                       f" options: {{serial: SER-{n}}}}}")
        checkpoints.append(f"    - {{key: {u}-cp, name: CPNAME-{n}, location: {u}-room,"
                           f" tags: [{{kind: qr, code: QR-{n}}}], items: [extinguisher]}}")
    return f"""
site: {{name: Org site, language: en, timezone: Asia/Shanghai}}
storage: {{path: {db}}}
units:{''.join(units)}
{ORGS}
devices:
{chr(10).join(devices)}
inspection:
  checkpoints:
{chr(10).join(checkpoints)}
"""


#: user → (role, direct units, organisations, the units they must see)
USERS: dict[str, tuple[str, list[str], list[str], set[str]]] = {
    "admin": ("admin", [], [], set(UNITS)),
    "integrator": ("integrator", [], [], set(UNITS)),
    "inspector": ("fire_inspector", [], ["county"], {"ua1", "ua2", "ub1", "ub2"}),
    "town_a_sup": ("supervisor", [], ["town_a"], {"ua1", "ua2"}),
    "edu_sup": ("supervisor", [], ["edu"], {"ua1", "ub1"}),
    "engineer": ("maintenance_engineer", [], ["maint"], {"ua2", "ub2"}),
    "manager_ub1": ("unit_manager", ["ub1"], [], {"ub1"}),
    "duty_ua1": ("duty_officer", ["ua1"], [], {"ua1"}),
    "mixed": ("duty_officer", ["uz9"], ["town_b"], {"uz9", "ub1", "ub2"}),
}


@dataclass
class OrgSite:
    core: Any
    app: Any
    url: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    #: unit key → every string that identifies one of its things (ids, keys, names)
    markers: dict[str, set[str]] = field(default_factory=dict)
    #: (path parameter name, unit key) → ids of that unit to fill it with
    ids: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def client(self, who: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers={"Authorization": f"Bearer {self.tokens[who]}"},
                                 timeout=20)

    def units_in(self, data: Any) -> set[str]:
        """Units whose things appear anywhere in ``data`` (decoded JSON, or text)."""
        strings = set(_strings(data)) if not isinstance(data, str) else {data}
        found = set()
        for unit, marks in self.markers.items():
            if strings & marks:
                found.add(unit)
                continue
            names = [m for m in marks if m.isupper() and "-" in m]  # NAME-UA1, SER-UA1 …: substrings too
            if any(name in s for s in strings for name in names):
                found.add(unit)
        return found


def _strings(data: Any) -> Any:
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for k, v in data.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(data, list):
        for v in data:
            yield from _strings(v)


def _set_markers(s: OrgSite) -> None:
    core = s.core
    reg = core.registry
    for u in UNITS:
        unit = reg.places_by_key[(PlaceKind.UNIT, u)]
        marks = {u, unit.id, f"UNITNAME-{u.upper()}", f"BLDNAME-{u.upper()}", f"FLOORNAME-{u.upper()}",
                 f"ROOMNAME-{u.upper()}", f"DEVNAME-{u.upper()}", f"SER-{u.upper()}", f"CPNAME-{u.upper()}",
                 f"QR-{u.upper()}", f"HAZARD-{u.upper()}", f"RECNOTE-{u.upper()}"}
        for key in (f"{u}-bld", f"{u}-f1", f"{u}-room", f"{u}-det", f"{u}-cp"):
            marks.add(key)
        for place in reg.places.values():
            if reg.unit_of(place.id) == unit.id:
                marks.add(place.id)
        device_id = core.device_ids[f"{u}-det"]
        marks.add(device_id)
        points = [p.point_id for p in reg.points_of_device(device_id)]
        marks.update(points)
        s.ids[("device_id", u)] = [device_id]
        s.ids[("point_id", u)] = points
        s.ids[("place_id", u)] = [reg.places_by_key[(PlaceKind.FLOOR, f"{u}-f1")].id]
        s.ids[("unit", u)] = [u, unit.id]
        s.markers[u] = marks


async def _add_alarm_markers(s: OrgSite) -> None:
    for u in UNITS:
        unit_id = s.core.registry.places_by_key[(PlaceKind.UNIT, u)].id
        rows = await s.core.storage.fetchall("SELECT id FROM alarms WHERE unit_id = ?", (unit_id,))
        s.ids[("alarm_id", u)] = [r[0] for r in rows]
        s.markers[u].update(r[0] for r in rows)


@pytest.fixture
async def org_site(tmp_path: Path) -> AsyncIterator[OrgSite]:
    VALUES.clear()
    VALUES.update({f"SER-{u.upper()}": {"smoke": False, "rc": 20} for u in UNITS})
    loaded = load_text(site_yaml(tmp_path / "fb.db"), "site.yaml", {})
    # Every built-in plugin (entry points), as a real site runs them, plus the test detector.
    async with running_core(loaded, extra_plugins={"webtest": WebTestPlugin()}, autoload=True) as core:
        auth = AuthStore(core.storage)
        s = OrgSite(core=core, app=None)
        for name, (role, units, orgs, _) in USERS.items():
            await auth.create_user(name, role, units=units, orgs=orgs, password="correct horse battery staple")
            s.tokens[name], _ = await auth.create_token(name, label="test")
        await wait_until(lambda: all(core.registry.points_of_device(core.device_ids[f"{u}-det"]) for u in UNITS)
                         and len(core.ingest.states) >= 2 * len(UNITS))
        _set_markers(s)
        async with anyio.create_task_group() as tg:
            server = await tg.start(serve, core, "127.0.0.1", 0)
            s.url, s.app = server.url, server.app
            await _populate(s)
            yield s
            tg.cancel_scope.cancel()


async def _populate(s: OrgSite) -> None:
    """A fire alarm in every unit, and an inspection record and a hazard at each unit's checkpoint."""
    for u in UNITS:
        VALUES[f"SER-{u.upper()}"]["smoke"] = True

    async def alarms_everywhere() -> bool:
        rows = await s.core.storage.fetchall("SELECT DISTINCT unit_id FROM alarms WHERE active = 1")
        return len({r[0] for r in rows}) == len(UNITS)

    await wait_until(alarms_everywhere)
    await _add_alarm_markers(s)
    async with s.client("admin") as c:
        for u in UNITS:
            record = new_id()
            r = await c.post("/-/plugins/inspection/api/records", json={
                "id": record, "checkpoint": f"{u}-cp", "results": [{"item": "extinguisher", "result": "normal"}],
                "note": f"RECNOTE-{u.upper()}"})
            assert r.status_code in (200, 201), r.text
            s.markers[u].add(record)
            r = await c.post("/-/plugins/inspection/api/hazards", json={
                "checkpoint": f"{u}-cp", "description": f"HAZARD-{u.upper()}"})
            assert r.status_code == 201, r.text
            s.markers[u].add(r.json()["id"])
        # The reports plugin's live scores are computed after start; walk them once they are
        # (if that takes long on a loaded machine, its routes are still walked for leaks: an
        # answer admin does not get as 200 is checked for foreign units and 404s only).
        with anyio.move_on_after(20):
            await wait_until(lambda: _ok(c, f"/-/plugins/reports/units/{UNITS[0]}/score"), timeout=20, step=0.2)


async def _ok(client: httpx.AsyncClient, path: str) -> bool:
    return (await client.get(path)).status_code == 200


# -- the walk ----------------------------------------------------------------------------------

#: values for path parameters that name no unit's thing (the rest are filled per unit)
HINTS = {"kind": ["patrol", "duty", "hazards"], "fmt": ["csv"]}
#: plugin GET routes the walk cannot fill, and why; a new route with a parameter the walk
#: does not know fails the test until it is taught here (or added to HINTS / _unit_values)
NOT_WALKED = {
    "/-/plugins/app/a/{token}": "a signed link: its own tests (the token is the scope)",
    "/-/plugins/notify/media/{token}/{name}": "a signed image link: tests/notify/test_media.py (the token is the scope)",
    "/-/plugins/notify/ntfy/{topics}/json": "ntfy topics belong to channels, not units (notify's tests)",
    "/-/plugins/notify/ntfy/{topics}/sse": "ntfy topics belong to channels, not units (notify's tests)",
    "/-/plugins/notify/ntfy/{topics}/raw": "ntfy topics belong to channels, not units (notify's tests)",
    "/-/plugins/notify/ntfy/{topics}/auth": "ntfy topics belong to channels, not units (notify's tests)",
    "/-/plugins/reports/files/{id}/{name}": "no report files in this site (reports' tests)",
}
#: answers checked for leaks only: what they must hold is checked by a test of their own
ONLY_NO_LEAK = {"/api/organisations": "organisations, not units (test_organisations_per_role)"}
STREAM_TYPES = ("text/event-stream", "application/x-ndjson", "multipart/x-mixed-replace")
_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")


@dataclass(frozen=True)
class Req:
    path: str  # concrete path
    query: tuple[tuple[str, str], ...] = ()
    unit: str | None = None  # the unit the path's object belongs to (None: a list or no object)
    org: str | None = None  # an organisation the path names


@dataclass
class Res:
    status: int
    data: Any  # decoded JSON, or text

    @property
    def ok(self) -> bool:
        return self.status == 200


async def fetch(client: httpx.AsyncClient, req: Req) -> Res:
    """GET, reading a stream for a moment only (a live view never ends)."""
    async with client.stream("GET", req.path, params=list(req.query), headers={"Accept": "application/json"}) as r:
        kind = r.headers.get("content-type", "")
        body = b""
        if any(kind.startswith(t) for t in STREAM_TYPES):
            with anyio.move_on_after(0.3):
                async for chunk in r.aiter_bytes():
                    body += chunk
        else:
            body = await r.aread()
    if kind.startswith("application/json"):
        return Res(r.status_code, json.loads(body))
    if kind.startswith(("text/", "application/javascript", "application/manifest")) or any(
            kind.startswith(t) for t in STREAM_TYPES):
        return Res(r.status_code, body.decode("utf-8", "replace"))
    return Res(r.status_code, body.decode("latin-1"))  # PDFs, images: markers are ASCII


def _unit_values(s: OrgSite, name: str) -> list[tuple[str, str | None, str | None]]:
    """(value, unit it belongs to, organisation) for a path parameter named ``name``."""
    lowered = name.lower()
    out: list[tuple[str, str | None, str | None]] = []
    kinds = (("alarm", "alarm_id"), ("device", "device_id"), ("point", "point_id"), ("place", "place_id"),
             ("floor", "place_id"), ("unit", "unit"))
    for word, key in kinds:
        if word in lowered:
            for u in UNITS:
                out += [(v, u, None) for v in s.ids.get((key, u), [])]
            return out
    if lowered in ("org", "org_key", "organisation", "key"):
        from firebus.core.web.views import org_tree

        return [(o.key, None, o.key) for o in org_tree(s.core)]
    return []


def core_requests(s: OrgSite, doc: dict[str, Any], harvested: dict[str, str | None]) -> tuple[list[Req], list[str]]:
    """Requests for every GET path of the OpenAPI document; a parameter that names no thing
    the walk knows is filled with the ids seen in admin's answers (``harvested``), or, when
    this site has none (``skipped``), an unknown id (which must be 404 to everyone)."""
    reqs: list[Req] = []
    skipped: list[str] = []
    for template, item in doc["paths"].items():
        if "get" not in item or template == "/api/events":  # the stream: test_stream_is_scoped
            continue
        params = _PARAM.findall(template)
        if not params:
            reqs.append(Req(template))
            query_names = {p["name"] for p in item["get"].get("parameters", []) if p["in"] == "query"}
            if "unit" in query_names:
                reqs += [Req(template, (("unit", u),), unit=u) for u in UNITS]
            if "device" in query_names:
                reqs += [Req(template, (("device", d),), unit=u) for u in UNITS for d in s.ids[("device_id", u)]]
            continue
        assert len(params) == 1, f"{template}: teach the walk paths with several parameters"
        values = _unit_values(s, params[0]) or [(v, u, None) for v, u in harvested.items()]
        if not values:
            skipped.append(template)
            values = [("01NOSUCHTHING0000000000000", None, None)]
        reqs += [Req(_PARAM.sub(v, template), unit=u, org=o) for v, u, o in values]
    return reqs, skipped


def plugin_routes(app: Any) -> list[str]:
    out = []
    for mount in app.routes:
        if isinstance(mount, Mount) and mount.path.startswith("/-/plugins/"):
            for route in mount.app.app.routes:
                if isinstance(route, Route) and "GET" in (route.methods or ()):
                    out.append(mount.path + route.path)
    return sorted(set(out))


def plugin_requests(s: OrgSite, harvested: dict[str, str | None]) -> tuple[list[Req], list[str]]:
    """Requests for every plugin GET route; ``harvested``: ids seen in admin's plugin JSON → unit."""
    month = (("month", __import__("datetime").date.today().strftime("%Y-%m")),)
    reqs: list[Req] = []
    skipped: list[str] = []
    for template in plugin_routes(s.app):
        params = _PARAM.findall(template)
        if not params:
            reqs.append(Req(template, month))
            reqs += [Req(template, month + (("unit", u),)) for u in UNITS]
            continue
        if template in NOT_WALKED or "/static/{" in template:  # a plugin's static files
            skipped.append(template)
            continue
        combos: list[tuple[str, str | None, str | None]] = [(template, None, None)]
        for name in params:
            if name in HINTS:
                values = [(v, None, None) for v in HINTS[name]]
            elif name == "id":
                values = [(v, u, None) for v, u in harvested.items()]
            else:
                values = _unit_values(s, name)
            if not values:
                skipped.append(template)
                combos = []
                break
            combos = [(re.sub(r"{" + name + r"(?::[^}]*)?}", v, path), uu or u, oo or o)
                      for path, uu, oo in combos for v, u, o in values]
        reqs += [Req(path, month, unit=u, org=o) for path, u, o in combos]
    return reqs, skipped


def harvest(s: OrgSite, data: Any, into: dict[str, str | None]) -> None:
    """Ids of objects in a plugin's JSON, with the one unit each belongs to."""
    if isinstance(data, dict):
        if isinstance(data.get("id"), str):
            units = s.units_in(data)
            if len(units) == 1:
                into.setdefault(data["id"], next(iter(units)))
        for v in data.values():
            harvest(s, v, into)
    elif isinstance(data, list):
        for v in data:
            harvest(s, v, into)


def visible_orgs(s: OrgSite, user: str) -> set[str] | None:
    from firebus.core.web.views import org_tree

    role, _, orgs, _ = USERS[user]
    return None if role in ("admin", "integrator") else set(org_tree(s.core).visible(orgs))


def judge(s: OrgSite, user: str, req: Req, admin: Res, got: Res) -> str | None:
    """What is wrong with ``got`` (None: right) for ``user``, given what admin got."""
    scope = USERS[user][3]
    where = req.path + (("?" + "&".join(f"{k}={v}" for k, v in req.query)) if req.query else "")
    seen = s.units_in(got.data)
    if got.status == 403:
        return f"{where}: 403 carries data of {sorted(seen)}" if seen else None
    if not got.ok:
        if seen - scope:
            return f"{where}: {got.status} names things of {sorted(seen - scope)}"
        if admin.ok and req.unit in scope and req.org is None and not req.path.startswith("/-/plugins/"):
            return f"{where}: {got.status} for an object of {req.unit}, which {user} sees"
        return None
    # Never anything outside the scope; everything of the scope that admin gets in the same
    # answer (an answer about the caller, /api/me, may name their units where admin's names none).
    # Plugin answers are checked for leaks only: a plugin may show a role less than its units
    # (the supervision views show an organisation's people, not a duty officer's).
    strict = not req.path.startswith("/-/plugins/") and req.path not in ONLY_NO_LEAK
    expected = s.units_in(admin.data) & scope if strict else set()
    if seen - scope or expected - seen:
        leaked, missing = sorted(seen - scope), sorted(expected - seen)
        return f"{where}: {user} got things of {leaked or '-'} it must not see; missing {missing or '-'}"
    if req.unit is not None and req.unit not in scope and not req.query:
        return f"{where}: 200 for an object of {req.unit}, outside {user}'s scope (must be 404)"
    orgs = visible_orgs(s, user)
    if req.org is not None and orgs is not None and req.org not in orgs:
        return f"{where}: 200 for organisation {req.org}, outside {user}'s (must be 404)"
    return None


async def walk(s: OrgSite, reqs: list[Req]) -> list[str]:
    async with s.client("admin") as c:
        admin = {req: await fetch(c, req) for req in reqs}
    problems: list[str] = []

    async def one(user: str) -> None:
        async with s.client(user) as c:
            for req in reqs:
                problem = judge(s, user, req, admin[req], await fetch(c, req))
                if problem:
                    problems.append(problem)

    async with anyio.create_task_group() as tg:
        for user in USERS:
            if user != "admin":
                tg.start_soon(one, user)
    return problems


async def test_every_get_endpoint_is_scoped(org_site) -> None:
    s = org_site
    async with s.client("admin") as c:
        doc = (await c.get("/api/openapi.json")).json()
    # Endpoints without parameters first (as admin), to learn the ids of each unit's objects.
    async def ids_of(reqs: list[Req]) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        async with s.client("admin") as c:
            for req in reqs:
                res = await fetch(c, req)
                if res.ok and not isinstance(res.data, str):
                    harvest(s, res.data, found)
        return found

    core_lists, _ = core_requests(s, doc, {})
    reqs, empty = core_requests(s, doc, await ids_of([r for r in core_lists if "{" not in r.path]))
    print("OpenAPI paths with no objects in this site (an unknown id is walked):", empty)
    harvested = await ids_of(plugin_requests(s, {})[0])
    preqs, skipped = plugin_requests(s, harvested)
    skipped = [t for t in skipped if "/static/{" not in t]
    assert set(skipped) <= set(NOT_WALKED), f"plugin GET routes the walk cannot fill: {set(skipped) - set(NOT_WALKED)}"
    problems = await walk(s, reqs + preqs)
    assert not problems, "\n".join(problems)
    # The walk saw what it is about: each unit's objects answered admin, and plugins were walked.
    async with s.client("admin") as c:
        ok_units = {req.unit for req in reqs + preqs if req.unit and (await fetch(c, req)).ok}
    assert ok_units == set(UNITS)
    assert {v for v in harvested.values()} == set(UNITS), "every unit's hazards and records are walked by id"
    assert any(r.path.startswith("/-/plugins/inspection/api/hazards/") for r in preqs)


async def test_stream_is_scoped(org_site) -> None:
    """Every user's /api/events carries its units' alarms and states, and nothing else."""
    from .test_stream import Listener

    s = org_site
    listeners = {user: Listener() for user in USERS}
    async with anyio.create_task_group() as tg:
        for user, listener in listeners.items():
            tg.start_soon(listener.run, s.url, s.tokens[user])
        for listener in listeners.values():
            with anyio.fail_after(10):
                await listener.connected.wait()

        def units_with(listener: Listener, kind: str, **match: Any) -> set[str]:
            return {u for data in listener.of(kind) if all(data.get(k) == v for k, v in match.items())
                    for u in s.units_in(data)}

        # Round 1, every unit: the smoke clears (alarm and state events).  Round 2, published after
        # round 1 reached admin: a residual-current change.  Each stream delivers in order, so a
        # user who has round 2 of their own units has had every round-1 event they were sent.
        for u in UNITS:
            VALUES[f"SER-{u.upper()}"]["smoke"] = False
        await wait_until(lambda: units_with(listeners["admin"], "alarm") == set(UNITS)
                         and units_with(listeners["admin"], "state", value=False) == set(UNITS))
        for u in UNITS:
            VALUES[f"SER-{u.upper()}"]["rc"] = 77
        for user, listener in listeners.items():
            await wait_until(lambda: units_with(listener, "state", value=77) >= USERS[user][3])
        tg.cancel_scope.cancel()
    for user, listener in listeners.items():
        scope = USERS[user][3]
        assert s.units_in([data for _, data in listener.events]) == scope, user
        assert units_with(listener, "alarm") == scope, user


def _tree_keys(items: list[dict[str, Any]]) -> list[str]:
    return [k for node in items for k in (node["key"], *_tree_keys(node["children"]))]


async def test_organisations_per_role(org_site) -> None:
    """GET /api/organisations: admin all trees; others the subtrees of their organisations,
    nothing above them; /api/me: organisations and the effective units."""
    expected = {
        "admin": ["county", "town_a", "town_b", "edu", "maint"],
        "integrator": ["county", "town_a", "town_b", "edu", "maint"],
        "inspector": ["county", "town_a", "town_b"],
        "town_a_sup": ["town_a"],
        "edu_sup": ["edu"],
        "engineer": ["maint"],
        "manager_ub1": [],
        "duty_ua1": [],
        "mixed": ["town_b"],
    }
    for user, keys in expected.items():
        async with org_site.client(user) as c:
            orgs = (await c.get("/api/organisations")).json()
            me = (await c.get("/api/me")).json()
        assert _tree_keys(orgs["items"]) == keys, user
        role, direct, assigned, scope = USERS[user]
        all_units = role in ("admin", "integrator")
        assert me["orgs"] == assigned and me["direct_units"] == direct and me["all_units"] is all_units
        assert set(me["units"]) == (set() if all_units else scope), user
        assert me["can_urge"] is (role in ("admin", "supervisor", "fire_inspector")), user
        assert me["can_act"] is (role in ("admin", "integrator", "unit_manager", "duty_officer",
                                          "maintenance_engineer")), user
    async with org_site.client("town_a_sup") as c:
        town = (await c.get("/api/organisations")).json()["items"][0]
    assert town == {"key": "town_a", "name": "甲镇", "name_en": "Town A", "kind": "town", "parent": "county",
                    "units": ["ua1", "ua2"], "units_under": ["ua1", "ua2"], "children": []}


async def test_plugin_caller_carries_effective_units(org_site) -> None:
    """A plugin route's Caller: units are direct + under the organisations; orgs as assigned."""
    from firebus.sdk.web import caller

    s = org_site
    seen: dict[str, Any] = {}
    for mount in s.app.routes:
        if isinstance(mount, Mount) and mount.path == "/-/plugins/webtest":
            from starlette.responses import JSONResponse

            from firebus.sdk import signed_in

            async def who(request: Any) -> Any:
                c = caller(request)
                seen[c.name] = c
                return JSONResponse({"units": list(c.units)})

            mount.app.app.routes.append(Route("/who", who))
            mount.app.open_routes.append(signed_in(mount.app.app.routes[-1]))
    for user in ("mixed", "edu_sup", "duty_ua1"):
        async with s.client(user) as c:
            assert (await c.get("/-/plugins/webtest/who")).status_code == 200
    assert seen["mixed"].units == ("ub1", "ub2", "uz9") and seen["mixed"].orgs == ("town_b",)
    assert seen["edu_sup"].units == ("ua1", "ub1") and seen["edu_sup"].can_urge
    assert seen["duty_ua1"].units == ("ua1",) and seen["duty_ua1"].orgs == () and not seen["duty_ua1"].can_urge
    assert seen["mixed"].sees("uz9") and not seen["mixed"].sees("ua1")
