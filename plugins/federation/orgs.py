"""Organisations at the centre: who supervises which sites (issue 24).

The same vocabulary as a site's ``organisations:`` section (``firebus.sdk.orgs``,
docs/supervision.md), with sites where a site has units: a forest of organisations
(``key``, ``name``, ``name_en``, ``kind``, ``parent``) in ``centre_orgs``, and the sites
each covers directly in ``centre_org_sites``.  An organisation covers its own sites and,
through its children, its descendants'; a site may be covered by several organisations
(its town, a regulator, its maintenance company).  A centre user assigned to an
organisation sees every site under it (``access.py``).

``firebus federation org add`` creates or replaces one organisation; the parent must
exist and may not be the organisation itself or one below it.  ``org remove`` removes one
that has no child organisations and no users assigned to it.
"""

from __future__ import annotations

import re
from typing import Any, Awaitable, Callable

from firebus.sdk.orgs import ORG_KIND_NAMES, Organisation, OrgKind, OrgTree

from .access import CentreUser
from .config import SUBJECT_TOKEN

ORG_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_NAME = 200

Query = Callable[[str, tuple[Any, ...]], Awaitable[list[tuple[Any, ...]]]]


class OrgRefused(Exception):
    """An organisation (or a user's assignment) refused: a code and why in English and Chinese."""

    def __init__(self, code: str, en: str, zh: str) -> None:
        super().__init__(en)
        self.code, self.en, self.zh = code, en, zh


def _some(keys: list[str], n: int = 20) -> str:
    return ", ".join(keys[:n]) + (f", … ({len(keys)})" if len(keys) > n else "") if keys else "-"


def kinds_text() -> tuple[str, str]:
    en = ", ".join(f"{k.value} ({ORG_KIND_NAMES[k][1]})" for k in OrgKind)
    zh = "、".join(f"{k.value}（{ORG_KIND_NAMES[k][0]}）" for k in OrgKind)
    return en, zh


def check_fields(key: str, name: str, kind: str, parent: str | None, sites: list[str]) -> OrgKind:
    if not ORG_KEY.match(key):
        raise OrgRefused("bad_key", f"organisation key {key!r}: 1–64 letters, digits, '.', '-' or '_'",
                         f"组织编号 {key!r}：1–64 个字母、数字、'.'、'-' 或 '_'")
    if not name.strip() or len(name) > MAX_NAME:
        raise OrgRefused("bad_name", f"name: 1–{MAX_NAME} characters", f"名称：1–{MAX_NAME} 个字符")
    try:
        kind_ = OrgKind(kind)
    except ValueError:
        en, zh = kinds_text()
        raise OrgRefused("unknown_kind", f"unknown kind {kind!r}; the kinds are {en}",
                         f"未知的组织类型 {kind!r}；可选：{zh}") from None
    if parent is not None and parent == key:
        raise OrgRefused("cycle", f"organisation {key!r} cannot be its own parent", f"组织 {key!r} 不能是自己的上级")
    for site in sites:
        if not SUBJECT_TOKEN.match(site):
            raise OrgRefused("bad_site", f"site id {site!r}: 1–64 letters, digits, '-' or '_'",
                             f"站点编号 {site!r}：1–64 个字母、数字、'-' 或 '_'")
    return kind_


async def put_org(conn: Any, key: str, name: str, kind: str, *, name_en: str = "", parent: str | None = None,
                  sites: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Create or replace organisation ``key`` (its name, kind, parent and the sites it covers
    directly; its children stay).  ``conn``: an autocommit psycopg connection.  Raises
    ``OrgRefused`` for an unknown kind or parent, or a parent that would make a cycle."""
    site_list = list(dict.fromkeys(sites))
    kind_ = check_fields(key, name, kind, parent, site_list)
    async with conn.transaction():
        # One writer at a time: two concurrent changes could otherwise make a cycle together.
        await conn.execute("LOCK TABLE centre_orgs IN SHARE ROW EXCLUSIVE MODE")
        existed = bool(await (await conn.execute("SELECT 1 FROM centre_orgs WHERE key = %s", (key,))).fetchall())
        if parent is not None:
            cur = await conn.execute(
                "WITH RECURSIVE up(key, parent, depth) AS ("
                " SELECT key, parent, 0 FROM centre_orgs WHERE key = %s"
                " UNION ALL SELECT o.key, o.parent, up.depth + 1 FROM centre_orgs o JOIN up ON o.key = up.parent"
                " WHERE up.depth < 10000) SELECT key FROM up ORDER BY depth", (parent,))
            chain = [r[0] for r in await cur.fetchall()]
            if not chain:
                known = [r[0] for r in await (await conn.execute("SELECT key FROM centre_orgs ORDER BY key")).fetchall()]
                raise OrgRefused("unknown_parent", f"no organisation {parent!r} to be the parent (organisations: "
                                                   f"{_some(known)})",
                                 f"上级组织 {parent!r} 不存在（现有组织：{_some(known)}）")
            if key in chain:
                loop = " → ".join([key, *reversed(chain[:chain.index(key)])] + [key])
                raise OrgRefused("cycle", f"{parent!r} is below {key!r}: the parent would make a cycle ({loop})",
                                 f"{parent!r} 是 {key!r} 的下级，设为上级会形成循环（{loop}）")
        await conn.execute(
            "INSERT INTO centre_orgs (key, name, name_en, kind, parent) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (key) DO UPDATE SET name = excluded.name, name_en = excluded.name_en, kind = excluded.kind, "
            "parent = excluded.parent, updated = now()", (key, name, name_en, str(kind_), parent))
        await conn.execute("DELETE FROM centre_org_sites WHERE org = %s", (key,))
        for site in site_list:
            await conn.execute("INSERT INTO centre_org_sites (org, site_id) VALUES (%s, %s)", (key, site))
    return {"key": key, "name": name, "name_en": name_en, "kind": str(kind_), "parent": parent, "sites": site_list,
            "replaced": existed}


async def remove_org(conn: Any, key: str) -> dict[str, Any]:
    """Remove organisation ``key`` and the sites it lists.  Refused (``OrgRefused``) while it
    has child organisations (they would become roots and their users' scope would change
    without anyone deciding it) or centre users assigned to it (they would silently see
    fewer sites): re-parent or remove those first.  ``conn``: an autocommit psycopg connection."""
    async with conn.transaction():
        await conn.execute("LOCK TABLE centre_orgs IN SHARE ROW EXCLUSIVE MODE")
        found = await (await conn.execute("SELECT name FROM centre_orgs WHERE key = %s", (key,))).fetchall()
        if not found:
            known = [r[0] for r in await (await conn.execute("SELECT key FROM centre_orgs ORDER BY key")).fetchall()]
            raise OrgRefused("unknown_org", f"no organisation {key!r} (organisations: {_some(known)})",
                             f"没有组织 {key!r}（现有组织：{_some(known)}）")
        children = [r[0] for r in await (await conn.execute(
            "SELECT key FROM centre_orgs WHERE parent = %s ORDER BY key", (key,))).fetchall()]
        if children:
            raise OrgRefused("has_children", f"organisation {key!r} has child organisations ({_some(children)}): "
                                             "give them another parent (org add --parent) or remove them first",
                             f"组织 {key!r} 有下级组织（{_some(children)}）：请先为其指定其他上级（org add --parent）或删除")
        users = [r[0] for r in await (await conn.execute(
            "SELECT name FROM centre_users WHERE %s = ANY(orgs) ORDER BY name", (key,))).fetchall()]
        if users:
            raise OrgRefused("has_users", f"centre users are assigned to organisation {key!r} ({_some(users)}): "
                                          "assign them elsewhere (user add) first",
                             f"有中心用户属于组织 {key!r}（{_some(users)}）：请先重新分配（user add）")
        sites = [r[0] for r in await (await conn.execute(
            "SELECT site_id FROM centre_org_sites WHERE org = %s ORDER BY site_id", (key,))).fetchall()]
        await conn.execute("DELETE FROM centre_orgs WHERE key = %s", (key,))  # its sites go with it (CASCADE)
    return {"key": key, "removed": True, "sites": sites}


async def check_orgs(query: Query, keys: list[str]) -> None:
    """Refuse organisation keys the centre does not have (with the list of those it has)."""
    if not keys:
        return
    found = {r[0] for r in await query("SELECT key FROM centre_orgs WHERE key = ANY(%s)", (keys,))}
    missing = [k for k in keys if k not in found]
    if missing:
        known = [r[0] for r in await query("SELECT key FROM centre_orgs ORDER BY key", ())]
        raise OrgRefused("unknown_org", f"no organisation {missing[0]!r} (organisations: {_some(known)}; "
                                        "firebus federation org add)",
                         f"没有组织 {missing[0]!r}（现有组织：{_some(known)}；firebus federation org add）")


async def load_tree(query: Query) -> OrgTree:
    """Every organisation of the centre, roots and children in key order, ``units`` = sites."""
    rows = await query("SELECT key, name, name_en, kind, parent FROM centre_orgs ORDER BY key", ())
    covered: dict[str, list[str]] = {}
    for org, site in await query("SELECT org, site_id FROM centre_org_sites ORDER BY org, site_id", ()):
        covered.setdefault(org, []).append(site)
    children: dict[str, list[str]] = {}
    for key, _, _, _, parent in rows:
        if parent is not None:
            children.setdefault(parent, []).append(key)
    orgs: dict[str, Organisation] = {}
    for key, name, name_en, kind, parent in rows:
        try:
            kind_: Any = OrgKind(kind)
        except ValueError:  # a kind of a newer version: shown as stored
            kind_ = kind
        orgs[key] = Organisation(key=key, name=name, name_en=name_en, kind=kind_, parent=parent,
                                 units=tuple(covered.get(key, ())), children=tuple(children.get(key, ())))
    return OrgTree(orgs, tuple(r[0] for r in rows if r[4] is None))


def visible_roots(tree: OrgTree, user: CentreUser) -> tuple[str, ...]:
    """The roots of the organisations ``user`` may look at: all for admin and integrator,
    otherwise the subtrees of their organisations (nothing above or beside them)."""
    return tree.roots() if user.all_sites else tree.top_of(user.orgs)


def to_builtins(tree: OrgTree, roots: tuple[str, ...]) -> list[dict[str, Any]]:
    """Nested plain data, each node with ``sites`` (direct) and ``sites_under`` (whole subtree)."""
    def node(key: str) -> dict[str, Any]:
        org = tree.get(key)
        assert org is not None
        return {"key": org.key, "name": org.name, "name_en": org.name_en, "kind": str(org.kind), "parent": org.parent,
                "sites": list(org.units), "sites_under": sorted(tree.units_under(key)),
                "children": [node(c) for c in org.children]}

    return [node(k) for k in roots if k in tree]


def text_lines(tree: OrgTree) -> list[str]:
    """``org list`` without ``--json``: one line per organisation, two spaces per level."""
    out: list[str] = []

    def walk(key: str, depth: int) -> None:
        org = tree.get(key)
        assert org is not None
        label = org.name + (f" / {org.name_en}" if org.name_en else "")
        out.append(f"{'  ' * depth}{org.key} [{org.kind}] {label}: {', '.join(org.units) or '-'}")
        for child in org.children:
            walk(child, depth + 1)

    for root in tree.roots():
        walk(root, 0)
    return out
