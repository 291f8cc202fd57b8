"""The fleet's hall as an officer sees it: headless Chromium on the fleet's own console.

``autogate sim fleet --gates 50 --screenshot FILE`` adds a supervisor to the console's
officers file, signs in with Debian's Chromium (through Debian's chromedriver: nothing is
downloaded) at the officers' 1920 x 1080, and saves the screen at the end of the run,
with the gate that has waited longest for an officer open in the side panel, as the
officer on shift would have it. It also reports whether the hall fitted the screen.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
OFFICER = "fleet-sup"


class HallScreen:
    """Blocking (Selenium): call its methods from a thread when on an event loop."""

    def __init__(self, officers_file: Path, port: int, profile: Path, size=(1920, 1080)):
        self.officers_file, self.port, self.profile, self.size = officers_file, port, profile, size
        self.password = secrets.token_urlsafe(16)
        self.driver: Any = None

    def open(self, timeout_s: float = 60.0) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        from console.auth import Officers

        Officers(self.officers_file).add(OFFICER, self.password, "supervisor")
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        w, h = self.size
        for flag in (
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--window-size={w},{h}",
            f"--user-data-dir={self.profile}",
        ):
            opts.add_argument(flag)
        d = self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        d.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": w, "height": h, "deviceScaleFactor": 1, "mobile": False},
        )
        deadline = time.monotonic() + timeout_s
        while True:  # the console process may still be starting
            try:
                d.get(f"http://127.0.0.1:{self.port}/login")
                d.find_element("id", "signin")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        d.find_element("id", "name").send_keys(OFFICER)
        d.find_element("id", "password").send_keys(self.password)
        d.find_element("id", "signin").click()
        self._until("document.body && document.body.dataset.live === '1'", deadline)

    def _until(self, js: str, deadline: float) -> None:
        while not self.driver.execute_script(f"return !!({js})"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the hall page never got to: {js}")
            time.sleep(0.2)

    def shoot(self, out: Path) -> dict[str, Any]:
        """Select the oldest referral (if any), save the screen; returns how the hall fits."""
        d = self.driver
        d.execute_script(
            "const q = document.querySelector('#queue li');"
            " if (q) q.click(); else document.querySelector('#hall article')?.click();"
        )
        time.sleep(0.5)  # one frame and the photos
        out.parent.mkdir(parents=True, exist_ok=True)
        d.save_screenshot(str(out))
        return d.execute_script(
            "const h = document.getElementById('hall');"
            "const cards = [...h.querySelectorAll('article')].map(c => c.getBoundingClientRect());"
            "return {gates: cards.length, hall_overflow_px: h.scrollHeight - h.clientHeight,"
            " outside: cards.filter(r => r.bottom > innerHeight || r.right > innerWidth).length,"
            " summary: document.getElementById('summary').innerText.replaceAll('\\n', ' ')}"
        )

    def close(self) -> None:
        if self.driver is not None:
            self.driver.quit()
            self.driver = None
