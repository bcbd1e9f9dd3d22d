"""A small driver for headless Chromium over the Chrome DevTools protocol.

Just enough to use the person's pages as a person would: open a page, click, fill a
form, read the page, take a screenshot, and run axe-core in it. One websocket to the
browser, one flattened session per tab.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-port=0",
)


class CdpError(RuntimeError):
    pass


class Browser:
    def __init__(self, profile: Path, timeout: float = 30) -> None:
        profile.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.time() + timeout
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if time.time() > deadline or self.proc.poll() is not None:
                self.proc.kill()
                raise CdpError("chromium did not start")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        self._stack = ExitStack()
        self.ws = self._stack.enter_context(
            connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=timeout)
        )
        self.ids = itertools.count(1)
        self.events: list[dict] = []
        self.timeout = timeout

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        msg_id = next(self.ids)
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        deadline = time.time() + self.timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise CdpError(f"{method}: no answer")
            data = json.loads(self.ws.recv(timeout=left))
            if data.get("id") == msg_id:
                if "error" in data:
                    raise CdpError(f"{method}: {data['error']}")
                return data.get("result", {})
            if "method" in data:
                self.events.append(data)

    def new_page(self, *, bypass_csp: bool = False) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session, target)
        page.call("Page.enable")
        page.call("Runtime.enable")
        page.call("Log.enable")
        if bypass_csp:
            page.call("Page.setBypassCSP", {"enabled": True})
        return page

    def close(self) -> None:
        with suppress(Exception):  # the browser may already be gone
            self.send("Browser.close")
        try:
            self._stack.close()
        finally:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Page:
    def __init__(self, browser: Browser, session: str, target: str) -> None:
        self.browser = browser
        self.session = session
        self.target = target

    def call(self, method: str, params: dict | None = None) -> dict:
        return self.browser.send(method, params, self.session)

    # -- reading ------------------------------------------------------------------------
    def eval(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise CdpError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    @property
    def url(self) -> str:
        return self.eval("location.href")

    @property
    def path(self) -> str:
        return self.eval("location.pathname")

    def text(self, selector: str = "main") -> str:
        return self.eval(f"(document.querySelector({json.dumps(selector)}) || {{}}).innerText || ''")

    def h1(self) -> str:
        return self.text("h1").strip()

    def logs(self) -> list[str]:
        """Console and browser log lines of this tab (CSP violations show up here)."""
        out = []
        for e in self.browser.events:
            if e.get("sessionId") != self.session:
                continue
            if e["method"] == "Log.entryAdded":
                out.append(e["params"]["entry"].get("text", ""))
            elif e["method"] == "Runtime.consoleAPICalled":
                out.extend(str(a.get("value", "")) for a in e["params"].get("args", []))
        return out

    # -- moving -------------------------------------------------------------------------
    def _wait_new_document(self, settle_path: str | None = None) -> None:
        deadline = time.time() + self.browser.timeout
        while time.time() < deadline:
            try:
                fresh = self.eval("window.__cbOld === undefined && document.readyState === 'complete'")
                if fresh and (settle_path is None or self.path.startswith(settle_path)):
                    return
            except CdpError:
                pass  # mid-navigation: the old context has gone
            time.sleep(0.05)
        raise CdpError(f"the page did not load (at {self.url})")

    def goto(self, url: str, *, settle_path: str | None = None) -> None:
        self.eval("window.__cbOld = true")
        self.call("Page.navigate", {"url": url})
        self._wait_new_document(settle_path)

    def click(self, selector: str, *, settle_path: str | None = None) -> None:
        """Click something that loads a new page (a link or a submit button)."""
        self.eval("window.__cbOld = true")
        found = self.eval(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            " if (!el) return false; el.click(); return true; })()"
        )
        if not found:
            raise CdpError(f"nothing matches {selector}")
        self._wait_new_document(settle_path)

    def check(self, selector: str) -> None:
        if not self.eval(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            " if (!el) return false; el.click(); return el.checked; })()"
        ):
            raise CdpError(f"could not tick {selector}")

    def fill(self, selector: str, value: str) -> None:
        if not self.eval(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            f" if (!el) return false; el.value = {json.dumps(value)}; return true; }})()"
        ):
            raise CdpError(f"nothing matches {selector}")

    # -- looking ------------------------------------------------------------------------
    def viewport(self, width: int, height: int, scale: float = 1, mobile: bool = False) -> None:
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile},
        )

    def screenshot(self, path: Path, *, full: bool = True) -> None:
        """The whole page (or only what fits the screen, for tall phone pages)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        shot = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": full})
        path.write_bytes(base64.b64decode(shot["data"]))

    def overflows(self) -> bool:
        """Whether the page itself scrolls sideways (the table scrolls in its own box)."""
        return bool(self.eval("document.documentElement.scrollWidth > window.innerWidth + 1"))

    def axe(self, source: str) -> list[dict]:
        """axe-core's WCAG 2.x A/AA violations on this page."""
        if not self.eval("typeof window.axe === 'object'"):
            self.eval(source + ";true")
        return self.eval(
            "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', "
            "'wcag21aa', 'wcag22aa', 'best-practice']}}).then(r => r.violations.map(v => "
            "({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))})))"
        )
