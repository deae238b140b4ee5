"""Organisations above units: who supervises, serves or answers for which units.

The site file's ``organisations:`` section is a list of trees (docs/supervision.md)::

    organisations:
      - key: county_brigade
        name: 某县消防救援大队
        name_en: County fire brigade
        kind: fire_brigade
        children:
          - {key: town_a, name: 甲镇, kind: town, units: [school, mall]}
      - {key: edu_bureau, name: 教育局, kind: regulator, units: [school]}
      - {key: acme_maint, name: 某维保公司, kind: maintenance, units: [school, mall]}

A unit may be covered by several organisations (its town, an industry regulator, its
maintenance company).  Keys are unique among organisations; every unit key is a unit of
the site file (the core checks both when it loads the file, with file:line errors).

How a plugin reaches it: ``org_tree(core)`` (``core.plugin_config("organisations")``
returns the section's list as plain data; ``OrgTree.from_section`` builds the tree).
The tree is read from the site file the core runs with, so adding a unit to a town
extends the scope of that town's people without touching their accounts.  A route's
caller already carries the effect: ``Caller.units`` is every unit the user sees
(direct units and all units under their organisations), ``Caller.orgs`` the
organisations they are assigned to.

Pure: no I/O, no core imports.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Iterable, Iterator

import msgspec


class OrgKind(StrEnum):
    """What kind of organisation a node is (a label; scope follows the tree, not the kind)."""

    FIRE_BRIGADE = "fire_brigade"  # 消防救援大队/站
    TOWN = "town"  # 乡镇/街道 (属地监管)
    REGULATOR = "regulator"  # 行业主管部门 (教育、卫健、商务…)
    MAINTENANCE = "maintenance"  # 维保单位
    OTHER = "other"


#: zh and en names of each kind, for pages and exports
ORG_KIND_NAMES: dict[OrgKind, tuple[str, str]] = {
    OrgKind.FIRE_BRIGADE: ("消防救援大队/站", "Fire and rescue brigade"),
    OrgKind.TOWN: ("乡镇/街道", "Town / street"),
    OrgKind.REGULATOR: ("行业主管部门", "Sector regulator"),
    OrgKind.MAINTENANCE: ("维保单位", "Maintenance company"),
    OrgKind.OTHER: ("其他", "Other"),
}


class OrgNode(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True, omit_defaults=True):
    """One node of the site file's ``organisations:`` section, as written."""

    key: str
    name: str  # Chinese name (what people read first)
    name_en: str = ""
    kind: OrgKind = OrgKind.OTHER
    units: list[str] = []  # unit keys of the site file it covers directly
    children: list["OrgNode"] = []


class Organisation(msgspec.Struct, frozen=True, kw_only=True):
    """A node of the tree, flattened: its parent and children by key."""

    key: str
    name: str
    name_en: str = ""
    kind: OrgKind = OrgKind.OTHER
    parent: str | None = None
    units: tuple[str, ...] = ()  # covered directly
    children: tuple[str, ...] = ()

    def label(self, lang: str = "zh") -> str:
        return (self.name_en or self.name) if lang == "en" else self.name


class OrgError(ValueError):
    """The section is not a valid organisation tree; ``path`` is where (``("organisations", 0, "key")``)."""

    def __init__(self, path: tuple[Any, ...], message: str) -> None:
        super().__init__(f"{_fmt(path)}: {message}")
        self.path, self.message = path, message


def _fmt(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _walk(nodes: Iterable[OrgNode], base: tuple[Any, ...]) -> Iterator[tuple[OrgNode, tuple[Any, ...], str | None]]:
    """(node, path in the file, parent key), depth first in file order."""
    top: str | None = None
    stack = [(node, base + (i,), top) for i, node in enumerate(nodes)][::-1]
    while stack:
        node, path, parent = stack.pop()
        yield node, path, parent
        stack.extend([(child, path + ("children", j), node.key) for j, child in enumerate(node.children)][::-1])


def problems(nodes: Iterable[OrgNode], unit_keys: Iterable[str] | None = None,
             base: tuple[Any, ...] = ("organisations",)) -> list[OrgError]:
    """Everything wrong with a parsed section: duplicate organisation keys, unit keys that
    are not units of the site (when ``unit_keys`` is given), a unit listed twice in a node."""
    out: list[OrgError] = []
    seen: dict[str, tuple[Any, ...]] = {}
    known = set(unit_keys) if unit_keys is not None else None
    for node, path, _ in _walk(nodes, base):
        if node.key in seen:
            out.append(OrgError(path + ("key",), f"duplicate organisation key {node.key!r} "
                                                 f"(first at {_fmt(seen[node.key])})"))
        else:
            seen[node.key] = path
        listed: set[str] = set()
        for u, unit in enumerate(node.units):
            if known is not None and unit not in known:
                out.append(OrgError(path + ("units", u), f"no unit with key {unit!r} in this site file "
                                                         f"(units: {', '.join(sorted(known)) or 'none'})"))
            elif unit in listed:
                out.append(OrgError(path + ("units", u), f"unit {unit!r} is listed twice"))
            listed.add(unit)
    return out


class OrgTree:
    """The organisations of a site, navigable by key.  Build with ``from_section``."""

    def __init__(self, orgs: dict[str, Organisation], roots: tuple[str, ...]) -> None:
        self._orgs = orgs
        self._roots = roots
        self._units_under: dict[str, frozenset[str]] = {}

    @classmethod
    def from_section(cls, section: Iterable[Any] | None) -> "OrgTree":
        """From the section's plain data (a list of node mappings) or parsed ``OrgNode``s.

        Raises ``OrgError`` for a malformed tree or duplicate keys (unit keys are not
        checked here: the tree does not know the site's units)."""
        items = list(section or [])
        if all(isinstance(i, OrgNode) for i in items):
            nodes: list[OrgNode] = items
        else:
            try:
                nodes = msgspec.convert(items, list[OrgNode], strict=True)
            except msgspec.ValidationError as exc:
                raise OrgError(("organisations",), str(exc)) from None
        found = problems(nodes)
        if found:
            raise found[0]
        orgs: dict[str, Organisation] = {}
        for node, _, parent in _walk(nodes, ()):
            orgs[node.key] = Organisation(
                key=node.key, name=node.name, name_en=node.name_en, kind=node.kind, parent=parent,
                units=tuple(dict.fromkeys(node.units)), children=tuple(c.key for c in node.children),
            )
        return cls(orgs, tuple(n.key for n in nodes))

    # -- lookups -------------------------------------------------------------------------

    def __contains__(self, key: object) -> bool:
        return key in self._orgs

    def __iter__(self) -> Iterator[Organisation]:
        """Every organisation, depth first in file order."""
        for root in self._roots:
            for key in self.subtree(root):
                yield self._orgs[key]

    def __len__(self) -> int:
        return len(self._orgs)

    def get(self, key: str) -> Organisation | None:
        return self._orgs.get(key)

    def roots(self) -> tuple[str, ...]:
        return self._roots

    def subtree(self, key: str) -> tuple[str, ...]:
        """``key`` and every organisation below it, depth first (empty for an unknown key)."""
        if key not in self._orgs:
            return ()
        out: list[str] = []
        stack = [key]
        while stack:
            k = stack.pop()
            out.append(k)
            stack.extend(reversed(self._orgs[k].children))
        return tuple(out)

    def units_under(self, key: str) -> frozenset[str]:
        """Every unit key covered by ``key`` or an organisation below it."""
        cached = self._units_under.get(key)
        if cached is None:
            cached = frozenset(u for k in self.subtree(key) for u in self._orgs[k].units)
            self._units_under[key] = cached
        return cached

    def units_of(self, keys: Iterable[str]) -> frozenset[str]:
        """The union of ``units_under`` over several organisations (unknown keys add nothing)."""
        out: set[str] = set()
        for key in keys:
            out |= self.units_under(key)
        return frozenset(out)

    def path(self, key: str) -> tuple[str, ...]:
        """Keys from the root down to ``key`` (empty for an unknown key)."""
        out: list[str] = []
        current: str | None = key if key in self._orgs else None
        while current is not None:
            out.append(current)
            current = self._orgs[current].parent
        return tuple(reversed(out))

    def orgs_of_unit(self, unit_key: str, *, direct: bool = False) -> tuple[str, ...]:
        """Organisations that see ``unit_key``: those listing it and (unless ``direct``)
        every organisation above them, depth first in file order."""
        listing = [o.key for o in self if unit_key in o.units]
        if direct:
            return tuple(listing)
        wanted = {k for key in listing for k in self.path(key)}
        return tuple(o.key for o in self if o.key in wanted)

    def visible(self, keys: Iterable[str]) -> tuple[str, ...]:
        """Every organisation in the subtrees of ``keys`` (what their people may look at),
        depth first in file order; nothing above them."""
        wanted = {k for key in keys for k in self.subtree(key)}
        return tuple(o.key for o in self if o.key in wanted)

    def to_builtins(self, keys: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Nested plain data of the trees rooted at ``keys`` (default: the roots), each node
        with ``units`` (direct) and ``units_under`` (whole subtree), for APIs and exports."""
        def node(key: str) -> dict[str, Any]:
            org = self._orgs[key]
            return {
                "key": org.key, "name": org.name, "name_en": org.name_en, "kind": str(org.kind),
                "parent": org.parent, "units": list(org.units), "units_under": sorted(self.units_under(key)),
                "children": [node(c) for c in org.children],
            }

        return [node(k) for k in (self._roots if keys is None else keys) if k in self._orgs]

    def top_of(self, keys: Iterable[str]) -> tuple[str, ...]:
        """Of ``keys``, those with no ancestor also in ``keys`` (the roots of what they see)."""
        chosen = {k for k in keys if k in self._orgs}
        return tuple(o.key for o in self if o.key in chosen
                     and not any(a in chosen for a in self.path(o.key)[:-1]))


def org_tree(core: Any) -> OrgTree:
    """The running site's organisations (``core.plugin_config("organisations")``), for a plugin."""
    return OrgTree.from_section(core.plugin_config("organisations") or [])
