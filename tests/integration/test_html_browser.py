"""The HTML report in a real browser: Debian's chromium, headless, driven over the DevTools
protocol (`--remote-debugging-pipe`: JSON messages on fds 3 and 4, no websocket library needed).

Checked: no console error or uncaught exception, no request but the report file itself (it is
self-contained), a hostile image's `<script>` in a path and markup in a history line stay text,
the timeline shows the layer that added and the layer that removed a planted secret, and the
severity/status filters hide and show rows. A screenshot of the sample image's report is taken;
`LAYERSCAN_SCREENSHOT=docs/report.png` keeps it (that is how the README's picture is made).
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import pytest

from tests import imagekit as ik
from tests import secrets_catalog as sc
from tests import services
from tests.unit.conftest import write_image

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 60
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                  "--remote-debugging-pipe"]
HOSTILE_PATH = "/app/<script>window.__pwned=1</script>.env"
HOSTILE_STEP = 'RUN /bin/sh -c echo "<img src=x onerror=window.__pwned=2>" > /dev/null # buildkit'
REMOVE_STEP = "RUN /bin/sh -c rm /app/.env # buildkit"


class Browser:
    """One headless chromium; `open(url)` loads a page in a fresh tab and records its events."""

    def __init__(self, profile: Path) -> None:
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if exe is None:
            raise services.ServiceUnavailable(f"chromium not found ({services.INSTALL_HINT})")
        to_browser, self._out = os.pipe()
        self._in, from_browser = os.pipe()
        # out of the way of 3 and 4, where the child needs them
        hi = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100) for fd in (to_browser, from_browser)]

        def child() -> None:
            os.dup2(hi[0], 3)
            os.dup2(hi[1], 4)

        self.proc = subprocess.Popen([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     pass_fds=(3, 4), preexec_fn=child, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for fd in (to_browser, from_browser, *hi):
            os.close(fd)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []
        self.session: Optional[str] = None

    def _recv(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            ready, _, _ = select.select([self._in], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError("chromium did not answer in time")
            data = os.read(self._in, 1 << 20)
            if not data:
                raise EOFError(f"chromium closed the pipe (exit status {self.proc.poll()})")
            self._buf += data
        message, _, self._buf = self._buf.partition(b"\0")
        return json.loads(message)

    def call(self, method: str, params: Optional[dict] = None, session: bool = True) -> dict:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self._recv(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._recv(deadline))

    def open(self, url: str, width: int = 1280, height: int = 900) -> None:
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)
        self.session = self.call("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True},
                                 session=False)["sessionId"]
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        self.events.clear()
        self.call("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired")

    def js(self, expression: str) -> Any:
        reply = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in reply:
            raise AssertionError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions, and log errors (CSP violations too)."""
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e.get("method") == "Runtime.exceptionThrown":
                out.append(f"uncaught: {p['exceptionDetails'].get('text')} {p['exceptionDetails'].get('exception')}")
            elif e.get("method") == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
                out.append(f"console.{p['type']}: {[a.get('value') for a in p.get('args', [])]}")
            elif e.get("method") == "Log.entryAdded" and p["entry"].get("level") in ("error", "warning"):
                out.append(f"log {p['entry']['level']}: {p['entry'].get('text')}")
        return out

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def screenshot(self, path: Path, max_height: Optional[int] = None) -> None:
        height = min(self.js("document.documentElement.scrollHeight"), max_height or 1 << 30)
        width = self.js("document.documentElement.scrollWidth")
        shot = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                    "clip": {"x": 0, "y": 0, "width": width, "height": height,
                                                             "scale": 1}})
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        try:
            self.call("Browser.close", session=False)
        except (OSError, EOFError, TimeoutError, RuntimeError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._in)
        os.close(self._out)


@pytest.fixture(scope="module")
def browser():
    profile = Path(tempfile.mkdtemp(prefix="layerscan-chromium-"))
    b = services.require(lambda: Browser(profile))
    try:
        yield b
    finally:
        b.close()
        shutil.rmtree(profile, ignore_errors=True)


def layerscan(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scanner", *args, "--no-progress", "--no-cache"], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


def hostile_spec() -> ik.ImageSpec:
    """A planted key added in layer 1 and removed in layer 3; a path and a step that hold markup."""
    return ik.ImageSpec([
        ik.LayerSpec("ADD rootfs.tar / # buildkit", [ik.dir("/app"), ik.file("/app/app.py", b"print('hi')\n")]),
        ik.LayerSpec("COPY .env /app/.env # buildkit", [ik.file("/app/.env", f"AWS_ACCESS_KEY_ID={sc.AWS_KEY_ID}\n".encode())]),
        ik.LayerSpec(HOSTILE_STEP, [ik.file(HOSTILE_PATH, f"token: {sc.GITHUB_PAT}\n".encode())]),
        ik.LayerSpec(REMOVE_STEP, [ik.whiteout("/app/.env")]),
    ], tags=["hostile/app:1"])


def open_report(browser: Browser, html: Path) -> None:
    browser.open(html.as_uri())
    assert browser.problems() == []
    assert browser.requests() == [html.as_uri()]  # the page itself, nothing else


def test_report_of_a_hostile_image(browser, tmp_path):
    image, _ = write_image(tmp_path, hostile_spec(), "oci-archive", "gzip")
    report = tmp_path / "report.html"
    run = layerscan(str(image), "--format", "html", "-o", str(report))
    assert run.returncode == 1, run.stderr
    open_report(browser, report)
    assert browser.js("typeof window.__pwned") == "undefined"
    assert browser.js("document.scripts.length") == 1 and browser.js("document.images.length") == 0
    assert HOSTILE_PATH in browser.js("document.body.textContent")
    assert HOSTILE_STEP in browser.js("document.body.textContent")
    added = browser.js("""Array.from(document.querySelectorAll('li.step.adds')).map(s =>
        [s.querySelector('.step-idx').textContent, s.querySelector('code').textContent,
         Array.from(s.querySelectorAll('ul.added > li')).map(li => li.textContent)])""")
    removed = browser.js("""Array.from(document.querySelectorAll('li.step.removes')).map(s =>
        [s.querySelector('.step-idx').textContent, s.querySelector('code').textContent,
         Array.from(s.querySelectorAll('ul.removed > li')).map(li => li.textContent)])""")
    assert [(idx, code) for idx, code, _ in added] == [("layer 1", "COPY .env /app/.env # buildkit"),
                                                       ("layer 2", HOSTILE_STEP)]
    assert "/app/.env:1" in added[0][2][0] and "aws-access-key-id" in added[0][2][0]
    assert "deleted in layer 3" in added[0][2][0]
    assert [(idx, code) for idx, code, _ in removed] == [("layer 3", REMOVE_STEP)]
    assert len(removed[0][2]) == 1 and "/app/.env:1" in removed[0][2][0] and "added in layer 1" in removed[0][2][0]
    assert sc.AWS_KEY_ID not in browser.js("document.documentElement.outerHTML")


def visible_rows() -> str:
    return "Array.from(document.querySelectorAll('#findings tr[data-severity]')).filter(r => !r.hidden).length"


def test_filters_by_severity_and_status(browser):
    report = Path(tempfile.mkdtemp(prefix="layerscan-html-")) / "report.html"
    try:
        run = layerscan("sample_images/leaky-app.tar", "--format", "html", "-o", str(report))
        assert run.returncode == 1, run.stderr
        open_report(browser, report)
        assert browser.js(visible_rows()) == 8
        assert browser.js("document.getElementById('shown').textContent") == "8 of 8 findings shown"
        browser.js("document.querySelector('input[name=severity][value=critical]').click()")
        assert browser.js(visible_rows()) == 2  # the two high ones (Slack token in Env and history)
        browser.js("document.querySelector('input[name=status][value=config]').click()")
        assert browser.js(visible_rows()) == 1
        assert browser.js("document.getElementById('shown').textContent") == "1 of 8 findings shown"
        browser.js("document.querySelectorAll('#filters input[type=checkbox]').forEach(b => { if (!b.checked) b.click(); })")
        assert browser.js(visible_rows()) == 8
        search = "document.querySelector('#filters input[type=search]')"
        browser.js(f"{search}.value = 'settings.yaml'; {search}.dispatchEvent(new Event('input', {{bubbles: true}}))")
        assert browser.js(visible_rows()) == 2
        browser.js(f"{search}.value = ''; {search}.dispatchEvent(new Event('input', {{bubbles: true}}))")
        assert browser.problems() == []
        shot = report.with_suffix(".png")
        browser.screenshot(shot)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if os.environ.get("LAYERSCAN_SCREENSHOT"):  # the README's picture: the top of the page
            browser.screenshot(Path(os.environ["LAYERSCAN_SCREENSHOT"]), max_height=1900)
    finally:
        shutil.rmtree(report.parent, ignore_errors=True)
