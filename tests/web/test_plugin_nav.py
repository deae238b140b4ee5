"""Plugin pages in the panel's navigation (firebus.sdk.nav_link), per role and language."""

from __future__ import annotations

import pytest

from .test_auth import login

pytestmark = pytest.mark.anyio


async def test_plugin_pages_are_linked_for_the_roles_that_may_open_them(site) -> None:
    async with site.client() as c:
        await login(c, "duty_a")
        nav = (await c.get("/?lang=zh")).text
        assert 'href="/-/plugins/webtest/rounds"' in nav and ">巡查<" in nav
        assert "/-/plugins/webtest/setup" not in nav  # system roles only
        assert (await c.get("/-/plugins/webtest/rounds")).status_code == 200
    async with site.client() as c:
        await login(c, "admin")
        nav = (await c.get("/?lang=en")).text
        assert ">Rounds<" in nav and 'href="/-/plugins/webtest/setup"' in nav and ">Setup<" in nav


async def test_a_public_plugin_route_opens_signed_out_and_sees_who_is_signed_in(site) -> None:
    async with site.client() as c:
        r = await c.get("/-/plugins/webtest/open")
        assert r.status_code == 200 and "anonymous" in r.text  # no redirect to the login page
        assert (await c.get("/-/plugins/webtest/rounds")).status_code in (303, 401, 403)  # the others stay shut
        await login(c, "duty_a")
        assert "duty_a" in (await c.get("/-/plugins/webtest/open")).text
