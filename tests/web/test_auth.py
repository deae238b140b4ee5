"""Login, sessions, CSRF, throttling, first-run admin, tokens and the user/token CLI."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import httpx
import pytest

from firebus.core.storage import Storage
from firebus.core.web import WEB_MIGRATIONS, AuthStore, add_web_commands, ensure_first_admin
from firebus.core.web.auth import AuthError, check_password
from firebus.core.web.throttle import LoginThrottle

from .conftest import PASSWORD, VALUES, wait_until

anyio_mark = pytest.mark.anyio


async def login(client: httpx.AsyncClient, name: str, password: str = PASSWORD, next_url: str = "/") -> httpx.Response:
    page = await client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return await client.post("/login", data={"username": name, "password": password, "csrf": token, "next": next_url})


def csrf_of(html: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]*)">', html).group(1)


@anyio_mark
async def test_login_sets_a_hardened_session_cookie(site) -> None:
    async with site.client() as c:
        r = await login(c, "Duty_A", next_url="/devices")  # names are case-insensitive
        assert r.status_code == 303 and r.headers["location"] == "/devices"
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("firebus_session=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
        assert "Path=/" in cookie and "Secure" not in cookie
        assert (await c.get("/devices")).status_code == 200
    async with site.client(base_url="https://panel") as c:
        r = await login(c, "duty_a")
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("__Host-firebus_session=") and "Secure" in cookie and "HttpOnly" in cookie
        assert "strict-transport-security" in r.headers


@anyio_mark
async def test_login_rejects_forged_form_and_open_redirect(site) -> None:
    async with site.client() as c:
        r = await c.post("/login", data={"username": "admin", "password": PASSWORD, "csrf": "guess"})
        assert r.status_code == 403
        r = await login(c, "admin", next_url="//evil.example/x")
        assert r.headers["location"] == "/"


@anyio_mark
async def test_wrong_password_and_unknown_user_look_the_same(site) -> None:
    async with site.client() as c:
        wrong = await login(c, "admin", "not the password")
        unknown = await login(c, "nobody", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong user name or password" in wrong.text and "Wrong user name or password" in unknown.text
    log = await site.auth.auth_log()
    assert [e["event"] for e in log[:2]] == ["login_failed", "login_failed"]


@anyio_mark
async def test_throttling_per_account_and_per_address(site) -> None:
    web = site.app.state.web
    clock = [1000.0]
    web.throttle = LoginThrottle(free_failures=3, address_limit=6, now=lambda: clock[0])
    async with site.client() as c:
        for _ in range(3):
            assert (await login(c, "duty_a", "wrong password!")).status_code == 401
        # Now throttled: even the right password waits (no oracle), with Retry-After.
        r = await login(c, "duty_a")
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        clock[0] += 2  # the delay has passed: the real user gets in
        assert (await login(c, "duty_a")).status_code == 303
        # Credential stuffing from one address across many accounts.
        for i in range(6):
            await login(c, f"user{i}", "wrong password!")
        assert (await login(c, "admin")).status_code == 429
        clock[0] += 901
        assert (await login(c, "admin")).status_code == 303
    events = [e["event"] for e in await site.auth.auth_log()]
    assert "login_throttled" in events


@anyio_mark
async def test_csrf_on_session_writes(site) -> None:
    VALUES["A1"]["smoke"] = True
    await wait_until(lambda: site.core.alarms.open_alarms())
    await site.core.storage.barrier()  # the API reads what is committed
    alarm_id = site.core.alarms.open_alarms()[0].id
    async with site.client() as c:
        await login(c, "duty_a")
        page = await c.get("/alarms")
        token = csrf_of(page.text)
        assert token
        r = await c.post(f"/api/alarms/{alarm_id}/ack", json={})
        assert r.status_code == 403 and r.json()["error"]["code"] == "csrf"
        r = await c.post(f"/alarms/{alarm_id}/ack", data={"csrf": "wrong"})
        assert r.status_code == 403
        assert not (await site.core.alarms.get(alarm_id)).acknowledged
        r = await c.post(f"/alarms/{alarm_id}/ack", data={"csrf": token})
        assert r.status_code == 303
        assert (await site.core.alarms.get(alarm_id)).ack_by == "duty_a"
        r = await c.post(f"/api/alarms/{alarm_id}/silence", json={}, headers={"X-CSRF-Token": token})
        assert r.status_code == 200 and r.json()["silenced"]


@anyio_mark
async def test_pages_are_scoped_and_role_gated(site) -> None:
    async with site.client() as c:
        assert (await c.get("/devices")).status_code == 303  # to the login page
        await login(c, "duty_a")
        assert (await c.get(f"/devices/{site.device('det-a')}")).status_code == 200
        other = await c.get(f"/devices/{site.device('det-b')}")
        assert other.status_code == 404 and "Detector B" not in other.text
        # The serial, as a word of its own: ids and CSRF tokens are random text that may contain "B1".
        assert not re.search(r"(?<![A-Za-z0-9_-])B1(?![A-Za-z0-9_-])", other.text)
        listing = await c.get("/devices")
        assert site.device("det-a") in listing.text and site.device("det-b") not in listing.text
        overview = await c.get("/")
        assert "Plant A" in overview.text and "Office B" not in overview.text
        places = await c.get("/places")
        assert "Switch room A" in places.text and "Server room B" not in places.text
        for path in ("/plugins", "/health", "/users"):
            assert (await c.get(path)).status_code == 403, path
        assert (await c.get("/devices?unit=office-b")).status_code == 404


@anyio_mark
async def test_logout_ends_the_session_on_the_server(site) -> None:
    async with site.client() as c:
        await login(c, "admin")
        raw = c.cookies.get("firebus_session")
        page = await c.get("/")
        r = await c.post("/logout", data={"csrf": csrf_of(page.text)})
        assert r.status_code == 303
    async with site.client(cookies={"firebus_session": raw}) as c:
        assert (await c.get("/")).status_code == 303
        assert (await c.get("/api/units")).status_code == 401


@anyio_mark
async def test_disabling_a_user_ends_sessions_and_tokens(site) -> None:
    async with site.client() as c:
        await login(c, "duty_a")
        assert (await c.get("/api/units")).status_code == 200
        await site.auth.set_disabled(site.users["duty_a"].id, True)
        assert (await c.get("/api/units")).status_code == 401
    async with site.client("duty_a") as c:
        assert (await c.get("/api/units")).status_code == 401


@anyio_mark
async def test_revoked_token_is_refused(site) -> None:
    raw, token = await site.auth.create_token("manager_b", label="app")
    async with site.client(headers={"Authorization": f"Bearer {raw}"}) as c:
        assert (await c.get("/api/me")).json()["name"] == "manager_b"
        assert await site.auth.revoke_token(token.id)
        r = await c.get("/api/me")
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"
        tampered = raw[:-2] + ("AA" if not raw.endswith("AA") else "BB")
        assert (await c.get("/api/me", headers={"Authorization": f"Bearer {tampered}"})).status_code == 401


@anyio_mark
async def test_one_time_password_must_be_changed(site) -> None:
    _, one_time = await site.auth.create_user("newbie", "duty_officer", units=["plant-a"])
    async with site.client() as c:
        r = await login(c, "newbie", one_time)
        assert r.status_code == 303 and r.headers["location"] == "/password"
        assert (await c.get("/devices")).headers["location"] == "/password"
        blocked = await c.get("/api/units")
        assert blocked.status_code == 403 and blocked.json()["error"]["code"] == "password_change_required"
        page = await c.get("/password")
        token = csrf_of(page.text)
        weak = await c.post("/password", data={"csrf": token, "current": one_time, "new": "password1", "repeat": "password1"})
        assert weak.status_code == 400 and "too common" in weak.text
        ok = await c.post("/password", data={"csrf": token, "current": one_time, "new": "a long new passphrase",
                                             "repeat": "a long new passphrase"})
        assert ok.status_code == 303 and ok.headers["location"] == "/"
        assert (await c.get("/devices")).status_code == 200  # this session was kept
    async with site.client() as c:
        assert (await login(c, "newbie", one_time)).status_code == 401
        assert (await login(c, "newbie", "a long new passphrase")).status_code == 303


@anyio_mark
async def test_first_admin_is_created_once_with_a_one_time_password(tmp_path: Path) -> None:
    async with Storage(tmp_path / "fb.db").running(WEB_MIGRATIONS) as storage:
        password = await ensure_first_admin(storage)
        assert password and len(password) >= 20
        assert await ensure_first_admin(storage) is None
        store = AuthStore(storage)
        admin = await store.authenticate("admin", password)
        assert admin is not None and admin.role == "admin" and admin.must_change
        row = await storage.fetchone("SELECT password_hash FROM web_users WHERE name = 'admin'")
        assert row[0].startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_password_policy() -> None:
    for weak in ("short", "password123", "x" * 129):
        with pytest.raises(AuthError):
            check_password(weak)
    with pytest.raises(AuthError):
        check_password("alice.smith", "Alice.Smith")
    check_password("长城消防值班室的密码")  # any characters, no composition rules
    check_password("y" * 64)


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="firebus")
    add_web_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_user_and_token_commands(tmp_path: Path, capsys) -> None:
    data = str(tmp_path)
    assert _cli(["user", "add", "Zhang.Wei", "--role", "duty_officer", "--unit", "plant-a", "--data", data, "--init"]) == 0
    out = capsys.readouterr().out
    assert "one-time password:" in out and "zhang.wei" in out
    assert _cli(["user", "add", "zhang.wei", "--role", "admin", "--data", data]) == 2
    assert "already exists" in capsys.readouterr().err
    assert _cli(["user", "add", "lonely", "--role", "supervisor", "--data", data]) == 2  # no unit
    assert "--unit" in capsys.readouterr().err
    assert _cli(["token", "create", "zhang.wei", "--label", "app", "--data", data]) == 0
    captured = capsys.readouterr()
    raw = captured.out.strip()
    assert raw.startswith("fbt_")
    token_id = raw[4:].split("_", 1)[0]
    assert _cli(["token", "list", "--data", data]) == 0
    listing = capsys.readouterr().out
    assert token_id in listing and raw not in listing and "active" in listing
    assert _cli(["token", "revoke", token_id, "--data", data]) == 0
    assert _cli(["token", "list", "--data", data]) == 0
    assert "revoked" in capsys.readouterr().out
    assert _cli(["token", "revoke", "nope", "--data", data]) == 1
    assert _cli(["user", "disable", "zhang.wei", "--data", data]) == 0
    assert _cli(["user", "list", "--data", data]) == 0
    assert "disabled" in capsys.readouterr().out
    assert _cli(["token", "create", "zhang.wei", "--data", data]) == 2
    assert (tmp_path / "firebus.db").exists()


def test_cli_checks_units_against_the_site_file(tmp_path: Path, capsys) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("storage: {path: db/site.db}\nunits: [{key: plant-a}]\n")
    assert _cli(["user", "add", "li", "--role", "duty_officer", "--unit", "plant-x", "--config", str(site)]) == 2
    assert "unknown unit" in capsys.readouterr().err
    assert _cli(["user", "add", "li", "--role", "duty_officer", "--unit", "plant-a", "--config", str(site)]) == 0
    assert (tmp_path / "db" / "site.db").exists()


@anyio_mark
async def test_demo_credentials_are_fresh_at_every_start(tmp_path: Path) -> None:
    from firebus.core.web import demo_credentials

    async with Storage(tmp_path / "fb.db").running(WEB_MIGRATIONS) as storage:
        name, first = await demo_credentials(storage)
        store = AuthStore(storage)
        user = await store.authenticate(name, first)
        assert user is not None and user.role == "admin" and not user.must_change
        _, second = await demo_credentials(storage)
        assert second != first
        assert await store.authenticate(name, first) is None
        assert await store.authenticate(name, second) is not None


def test_cli_reset_password(tmp_path: Path, capsys) -> None:
    data = str(tmp_path)
    assert _cli(["user", "add", "wang", "--role", "admin", "--data", data, "--init"]) == 0
    first = capsys.readouterr().out.split("one-time password: ")[1].split()[0]
    assert _cli(["user", "reset-password", "wang", "--data", data]) == 0
    second = capsys.readouterr().out.split("one-time password for wang: ")[1].split()[0]
    assert first != second
    assert _cli(["user", "reset-password", "nobody", "--data", data]) == 2
