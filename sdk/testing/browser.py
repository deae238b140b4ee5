"""A real headless Chromium for panel and phone-page tests (Debian ``chromium`` and
``chromium-driver``, installed by ``scripts/ensure-system-deps.sh``), driven by Selenium.

    from firebus.sdk.testing.browser import chromium

    d = chromium(width=390, height=844, lang="zh-CN", mobile=True)
    try:
        d.get(url)
        ...
    finally:
        d.quit()

A missing browser fails the test with what to install, never skips it.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from selenium import webdriver

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: quiet, reproducible: no first-run pages, updates, sync or background traffic
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


def chromium(*, width: int = 1200, height: int = 860, lang: str = "en-US", mobile: bool = False,
             console_log: bool = False, extra_flags: tuple[str, ...] = ()) -> "webdriver.Chrome":
    """A headless Chromium with a ``width`` × ``height`` window and ``lang`` as its language.

    ``mobile``: the page sees a phone's viewport of that size (a desktop window is at least
    500 px wide, so it is emulated); ``console_log``: the page's console is kept for
    ``get_log("browser")``; ``extra_flags``: more command-line switches (e.g.
    ``--autoplay-policy=no-user-gesture-required`` for a page that plays a sound)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    assert not missing, f"{missing} not installed: run scripts/ensure-system-deps.sh (Debian chromium, chromium-driver)"
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--window-size={width},{height}", f"--lang={lang}", *extra_flags):
        options.add_argument(flag)
    if console_log:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    if mobile:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True})
    return driver
