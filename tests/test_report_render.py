"""The example plan's report rendered in headless Chromium (Debian's chromium package).

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON
messages separated by NUL bytes on file descriptors 3 and 4), so the test needs nothing but the
standard library. It checks that the page loads offline with no console error, no script error
and no request other than the file itself, that the floor maps and the charts are drawn with a
size, and saves a full-page screenshot whose path is printed in the test output (a CI artefact;
the directory is ``$TAPAS_ARTIFACTS_DIR`` or ``<tmp>/tapas-opt-artifacts``).
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import EXAMPLE
from tapas_opt.cli import main

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-pipe", "--hide-scrollbars", "--mute-audio"]


def chromium_path() -> str | None:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


class DevTools:
    """A minimal DevTools-protocol client over Chromium's pipe."""

    def __init__(self, exe: str, user_data_dir: Path, log_path: Path):
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()

        def wire_fds():  # Chromium reads commands on fd 3 and writes replies on fd 4
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen([exe, *FLAGS, f"--user-data-dir={user_data_dir}", "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                     preexec_fn=wire_fds, close_fds=False)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._next = 0
        self.events: list[dict] = []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from Chromium")
            ready, _, _ = select.select([self._r], [], [], left)
            if ready:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60.0):
        self._next += 1
        msg = {"id": self._next, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 60.0) -> dict:
        for i, e in enumerate(self.events):
            if e.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            e = self._read_message(deadline)
            if e.get("method") == method:
                return e
            self.events.append(e)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._log.close()


def artifacts_dir() -> Path:
    path = Path(os.environ.get("TAPAS_ARTIFACTS_DIR") or Path(tempfile.gettempdir()) / "tapas-opt-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


CHECK_JS = """(() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return [r.width, r.height]; };
  const q = (s) => Array.from(document.querySelectorAll(s));
  return JSON.stringify({
    title: document.title,
    floor_maps: q('svg.floor-map').map(e => ({id: e.id, size: box(e)})),
    servers: q('svg.floor-map rect.server').length,
    placed_marks: q('svg.floor-map circle.placed').length,
    charts: q('svg.chart').map(e => ({subject: e.dataset.subject, size: box(e),
                                      lines: e.querySelectorAll('path.plan-line').length,
                                      limits: e.querySelectorAll('line.limit').length})),
    row_charts: q('#row-power svg.chart').length,
    aisle_charts: q('#aisle-airflow svg.chart').length,
    cards: q('.card').length,
    emergency_charts: q('#emergencies svg.emergency-chart').length,
    scripts: q('script').length,
  });
})()"""


def render_page(browser: DevTools, session: str, path: Path) -> tuple[dict, bytes, list[dict], list[str]]:
    """Load ``path``; return the DOM checks, a full-page PNG, the console/script errors and any
    request other than the page itself."""
    browser.events.clear()
    url = path.resolve().as_uri()
    browser.send("Page.navigate", {"url": url}, session=session)
    browser.wait_for("Page.loadEventFired")
    checks = json.loads(browser.send("Runtime.evaluate", {"expression": CHECK_JS, "returnByValue": True},
                                     session=session)["result"]["value"])
    metrics = browser.send("Page.getLayoutMetrics", session=session)
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    shot = browser.send("Page.captureScreenshot",
                        {"format": "png", "captureBeyondViewport": True,
                         "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}},
                        session=session, timeout=120)
    time.sleep(0.2)  # let late console messages arrive
    browser.send("Runtime.evaluate", {"expression": "1"}, session=session)
    errors = [e["params"] for e in browser.events if
              (e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") in ("error", "assert"))
              or e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error")]
    requests = [e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"]
    foreign = [u for u in requests if u != url and not u.startswith("data:")]
    return checks, base64.b64decode(shot["data"]), errors, foreign


@pytest.mark.slow
def test_example_report_renders_in_headless_chromium(tmp_path, capsys):
    """Floor maps and charts are drawn, with no console error and no network request; the same
    for the report with a baseline and an emergency."""
    exe = chromium_path()
    if exe is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium; .ci/run tries to install it)")
    runner = CliRunner()
    for policy in ("optimal", "first-fit"):
        res = runner.invoke(main, ["place", str(EXAMPLE), "--out", str(tmp_path / policy), "--policy", policy,
                                   "--time-limit", "5", "--forecast-method", "template", "--quiet"])
        assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["reconfigure", str(EXAMPLE), "--event", "ups-failure", "--out", str(tmp_path / "ups"),
                               "--forecast-method", "template", "--quiet"])
    assert res.exit_code in (0, 1), res.output
    plain, full = tmp_path / "report.html", tmp_path / "full.html"
    for out, extra in ((plain, []), (full, ["--baseline", str(tmp_path / "first-fit"),
                                            "--emergency", str(tmp_path / "ups")])):
        res = runner.invoke(main, ["report", str(tmp_path / "optimal"), "--inventory", str(EXAMPLE),
                                   "--out", str(out), "--quiet", *extra])
        assert res.exit_code == 0, res.output
    n_rows = len(json.loads((tmp_path / "optimal" / "summary.json").read_text())["rows"])

    log = tmp_path / "chromium.log"
    browser = DevTools(exe, tmp_path / "profile", log)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})
        session = browser.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": False}, session=session)
        checks, png, errors, foreign = render_page(browser, session, plain)
        checks_full, png_full, errors_full, foreign_full = render_page(browser, session, full)
    except (TimeoutError, RuntimeError) as exc:
        pytest.fail(f"Chromium failed: {exc}\n{log.read_text(errors='replace')[-3000:]}")
    finally:
        browser.close()

    path, path_full = artifacts_dir() / "report-example.png", artifacts_dir() / "report-example-baseline.png"
    path.write_bytes(png)
    path_full.write_bytes(png_full)
    with capsys.disabled():
        print(f"\n[artefact] screenshot of the example report in headless Chromium: {path}"
              f"\n[artefact] the same with a first-fit baseline and a UPS failure: {path_full}")

    assert not errors, errors
    assert not errors_full, errors_full
    assert not foreign and not foreign_full, (foreign, foreign_full)  # it opens offline
    assert checks["scripts"] == 0 and checks_full["scripts"] == 0
    assert checks["title"].startswith("tapas-opt report")
    assert {m["id"] for m in checks["floor_maps"]} == {"floor-map-temp", "floor-map-power"}
    for m in checks["floor_maps"] + checks_full["floor_maps"]:
        assert m["size"][0] > 300 and m["size"][1] > 100, m
    assert checks["servers"] == 2 * 160 and checks["placed_marks"] > 0
    assert checks["row_charts"] == n_rows and checks["aisle_charts"] == 2
    for c in checks["charts"]:
        assert c["size"][0] > 200 and c["size"][1] > 80 and c["lines"] == 1 and c["limits"] == 1, c
    assert checks["cards"] >= 4
    assert len(checks_full["floor_maps"]) == 4 and checks_full["servers"] == 4 * 160
    assert checks_full["emergency_charts"] == 1
    assert path.stat().st_size > 10_000 and path_full.stat().st_size > path.stat().st_size
