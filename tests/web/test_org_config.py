"""The organisations: section (file:line errors), the OrgTree, users assigned to organisations
(store and CLI), and scope read from the site file the core runs with."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from firebus.core.config import ConfigError, load_text
from firebus.core.runtime import running_core
from firebus.core.web import AuthStore
from firebus.core.web.auth import AuthError
from firebus.core.web.cli import add_web_commands
from firebus.sdk import OrgError, OrgKind, OrgTree, org_tree

SECTION = [
    {"key": "county", "name": "县大队", "kind": "fire_brigade", "children": [
        {"key": "town_a", "name": "甲镇", "kind": "town", "units": ["a1", "a2"]},
        {"key": "town_b", "name": "乙镇", "kind": "town", "units": ["b1", "b2"], "children": [
            {"key": "village", "name": "村", "units": ["b3"]}]}]},
    {"key": "edu", "name": "教育局", "name_en": "Education bureau", "kind": "regulator", "units": ["a1", "b1"]},
    {"key": "maint", "name": "维保", "kind": "maintenance", "units": ["a2", "b2"]},
]


def test_tree_navigation() -> None:
    tree = OrgTree.from_section(SECTION)
    assert tree.roots() == ("county", "edu", "maint")
    assert tree.subtree("town_b") == ("town_b", "village")
    assert tree.units_under("county") == {"a1", "a2", "b1", "b2", "b3"}
    assert tree.units_under("nope") == frozenset()
    assert tree.path("village") == ("county", "town_b", "village")
    assert tree.orgs_of_unit("b1") == ("county", "town_b", "edu")
    assert tree.orgs_of_unit("b1", direct=True) == ("town_b", "edu")
    assert tree.visible(["town_b"]) == ("town_b", "village")
    assert tree.top_of(["village", "county", "edu"]) == ("county", "edu")
    org = tree.get("edu")
    assert org is not None and org.kind is OrgKind.REGULATOR and org.parent is None
    assert org.label("en") == "Education bureau" and org.label("zh") == "教育局"
    assert tree.get("village").kind is OrgKind.OTHER and tree.get("village").parent == "town_b"
    assert [n["key"] for n in tree.to_builtins(["town_b"])[0]["children"]] == ["village"]


def test_tree_refuses_duplicates_and_bad_shapes() -> None:
    with pytest.raises(OrgError, match=r"organisations\[1\]\.key: duplicate organisation key 'x'"):
        OrgTree.from_section([{"key": "x", "name": "a"}, {"key": "x", "name": "b"}])
    with pytest.raises(OrgError, match="name"):
        OrgTree.from_section([{"key": "x"}])


def test_org_tree_reads_the_section_through_plugin_config() -> None:
    class FakeCore:  # what a plugin holds: CoreAPI.plugin_config
        def plugin_config(self, name: str) -> object:
            return list(SECTION) if name == "organisations" else {}

    assert len(org_tree(FakeCore())) == 6


SITE = """\
units:
  - {key: a1, name: A1, kind: school, geo: {lat: 30.27, lon: 120.15}}
  - {key: b1, name: B1, kind: warehouse}
organisations:
  - key: county
    name: 县大队
    kind: fire_brigade
    children:
      - key: town_a
        name: 甲镇
        kind: town
        units: [a1, a9]
      - {key: county, name: 重复}
  - {key: edu, name: 教育局, kind: ministry, units: [b1]}
"""


def test_site_file_errors_name_file_line_and_field() -> None:
    with pytest.raises(ConfigError) as info:
        load_text(SITE, "site.yaml", {})
    text = str(info.value)
    assert "site.yaml:12: organisations[0].children[0].units[1]: no unit with key 'a9' in this site file" in text
    assert "site.yaml:13: organisations[0].children[1].key: duplicate organisation key 'county'" in text
    assert "site.yaml:14: organisations[1].kind: invalid enum value 'ministry'" in text


def test_unit_kind_and_geo() -> None:
    site = load_text("units:\n  - {key: a1, kind: school, geo: {lat: 30.27, lon: 120}}\n", "s.yaml", {}).site
    assert site.units[0].kind == "school" and site.units[0].geo.lat == 30.27 and site.units[0].geo.lon == 120
    with pytest.raises(ConfigError, match=r"s.yaml:2: units\[0\].geo.lon: lon is WGS-84 degrees"):
        load_text("units:\n  - {key: a1, geo: {lat: 30, lon: 200}}\n", "s.yaml", {})


def _site(db: Path, town_a_units: str) -> str:
    return f"""
storage: {{path: {db}}}
units: [{{key: a1}}, {{key: a2}}, {{key: b1}}]
organisations:
  - {{key: town_a, name: 甲镇, kind: town, units: [{town_a_units}]}}
  - {{key: town_b, name: 乙镇, kind: town, units: [b1]}}
"""


@pytest.mark.anyio
async def test_scope_follows_the_site_file_not_the_account(tmp_path: Path) -> None:
    """Adding a unit to a town in the site file extends its people's scope at the next start."""
    from firebus.core.web.views import Scope, effective_units
    from firebus.core.web.auth import Principal

    db = tmp_path / "fb.db"
    async with running_core(load_text(_site(db, "a1"), "site.yaml", {}), autoload=False) as core:
        store = AuthStore(core.storage)
        user, _ = await store.create_user("sup", "supervisor", orgs=["town_a"], password="correct horse battery")
        assert effective_units(core, user) == ("a1",)
        with pytest.raises(AuthError, match="--unit or --org"):
            await store.create_user("nobody", "fire_inspector")
    async with running_core(load_text(_site(db, "a1, a2"), "site.yaml", {}), autoload=False) as core:
        user = await AuthStore(core.storage).get_user("sup")
        assert user.orgs == ["town_a"] and user.units == []
        scope = Scope(core, Principal(user=user, via="token"))
        assert scope.unit_keys == ("a1", "a2")
        assert [o["key"] for o in scope.orgs()] == ["town_a"]
        user = await AuthStore(core.storage).set_assignment("sup", units=["b1"], orgs=["gone"])
        assert effective_units(core, user) == ("b1",)  # an organisation no longer in the file adds nothing


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="firebus")
    add_web_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_users_with_organisations(tmp_path: Path, capsys) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(_site(tmp_path / "fb.db", "a1"))
    cfg = ["--config", str(site)]
    assert _cli(["user", "add", "wang", "--role", "fire_inspector", "--org", "town_x", *cfg]) == 2
    err = capsys.readouterr().err
    assert "unknown organisation(s) ['town_x']" in err and "town_a (甲镇)" in err
    assert _cli(["user", "add", "wang", "--role", "supervisor", *cfg]) == 2
    assert "--unit or --org" in capsys.readouterr().err
    assert _cli(["user", "add", "wang", "--role", "fire_inspector", "--org", "town_a", *cfg]) == 0
    assert "organisations town_a (every unit under them)" in capsys.readouterr().out
    assert _cli(["user", "add", "li", "--role", "maintenance_engineer", "--unit", "a2", "--org", "town_b", *cfg]) == 0
    capsys.readouterr()
    assert _cli(["user", "set", "wang", "--org", "town_b", "--unit", "a1", *cfg]) == 0
    assert "units a1; organisations town_b" in capsys.readouterr().out
    assert _cli(["user", "set", "wang", "--role", "supervisor", *cfg]) == 0  # role only: scope kept
    assert "supervisor; units a1; organisations town_b" in capsys.readouterr().out
    assert _cli(["user", "set", "wang", "--org", "nope", *cfg]) == 2
    assert _cli(["user", "set", "ghost", "--org", "town_a", *cfg]) == 2
    assert "no user 'ghost'" in capsys.readouterr().err
    assert _cli(["user", "list", *cfg]) == 0
    listing = capsys.readouterr().out
    assert "a1,org:town_b" in listing and "a2,org:town_b" in listing and "maintenance_engineer" in listing
