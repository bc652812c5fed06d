"""The dashboard in real headless Chromium, as a clinician uses it in the morning: login →
digest drawn, digest → patient with every chart drawn, a time-range switch. Times are wall
clock in the browser (server, network on 127.0.0.1, Vega drawing), as a ratio against the
login form drawn in the same run (Streamlit's own start-up, the baseline).

Called by ``benchmarks/dashboard.py --browser``; see there for the store it builds."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher

from medsleep.auth.users import add_user

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
PASSWORD = "benchmark-password"
TARGET_S = 2.0


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(url: str, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    users = work / "bench-users.json"
    if not users.exists():
        add_user(users, "ana", "clinician", PASSWORD, hasher=PasswordHasher(1, 8, 1))
    port = _port()
    log = (work / "dashboard.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "medsleep", "dashboard", "--db", url, "--users", str(users),
         "--port", str(port), "--tz", "Europe/Zurich"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2):
                return proc, base
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the dashboard did not start; see dashboard.log")


def _charts_drawn(page: Any) -> None:
    page.wait_for_function(
        """() => {
            const charts = document.querySelectorAll("[data-testid='stVegaLiteChart']");
            return charts.length >= 6 && [...charts].every(c => c.querySelector('svg, canvas'))
                && !document.querySelector("[data-testid='stStatusWidget'] button");
        }""",
        timeout=120_000,
    )


def _session(page: Any, base: str) -> dict[str, float]:
    out: dict[str, float] = {}
    start = time.perf_counter()
    page.goto(base)
    page.get_by_label("User name").wait_for()
    out["login form (baseline)"] = time.perf_counter() - start
    page.get_by_label("User name").fill("ana")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    start = time.perf_counter()
    page.get_by_role("button", name="Log in").click()
    page.locator("[data-testid='stDataFrame']").first.wait_for()
    page.get_by_role("button", name="Open patient").first.wait_for()
    out["login → digest drawn"] = time.perf_counter() - start
    start = time.perf_counter()
    page.get_by_role("button", name="Open patient").first.click()
    page.get_by_role("heading", name="Retained readings and why").wait_for()
    _charts_drawn(page)
    out["digest → patient, every chart"] = time.perf_counter() - start
    caption = page.get_by_text("times in Europe/Zurich, UTC in tooltips").first.inner_text()
    start = time.perf_counter()
    page.get_by_text("7 days", exact=True).click()
    page.wait_for_function(
        "old => ![...document.querySelectorAll('p')].some(p => p.innerText === old)", arg=caption,
        timeout=120_000,
    )  # fmt: skip
    _charts_drawn(page)
    out["time range 24 h → 7 days"] = time.perf_counter() - start
    return out


def measure_browser(url: str, work: Path, repeat: int) -> None:
    from playwright.sync_api import sync_playwright

    proc, base = _serve(url, work)
    runs: list[dict[str, float]] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for _ in range(repeat + 1):  # the first is cold: the server's caches are empty
                page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                page.set_default_timeout(120_000)
                runs.append(_session(page, base))
                page.context.close()
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    baseline = statistics.median(r["login form (baseline)"] for r in runs[1:])
    print(
        f"{'browser step':>32}  {'cold':>7}  {'warm med':>8}  {'warm max':>8}  {'× baseline':>10}"
    )
    for step in runs[0]:
        warm = [r[step] for r in runs[1:]]
        worst = max(runs[0][step], *warm)
        verdict = "" if step.endswith("(baseline)") else (" ok" if worst <= TARGET_S else " SLOW")
        print(
            f"{step:>32}  {runs[0][step]:6.2f}s  {statistics.median(warm):7.2f}s  "
            f"{max(warm):7.2f}s  {statistics.median(warm) / baseline:9.1f}×{verdict}"
        )
