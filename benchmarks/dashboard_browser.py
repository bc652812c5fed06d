"""The dashboard in real headless Chromium, as a clinician uses it in the morning: login →
digest drawn, digest → patient with every chart drawn, a time-range switch. Times are wall
clock in the browser (server, network on 127.0.0.1, Vega drawing), as a ratio against the
login form drawn in the same run (Streamlit's own start-up, the baseline).

With ``--against DIR`` (another checkout, say ``git worktree add /tmp/main main``) a second
server runs that code on the same store, and the sessions alternate between the two (old,
new, old, new …), so that a busy machine slows both alike; the last column is new ÷ old.

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


def _serve(url: str, work: Path, tree: Path | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """``medsleep dashboard`` on a free port: this checkout's code, or ``tree``'s (first on the
    path, so its ``medsleep`` and ``dashboard/`` run)."""
    users = work / "bench-users.json"
    if not users.exists():
        add_user(users, "ana", "clinician", PASSWORD, hasher=PasswordHasher(1, 8, 1))
    port = _port()
    log = (work / f"dashboard{'-against' if tree else ''}.log").open("wb")
    env = {**os.environ} | ({"PYTHONPATH": str(tree)} if tree else {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "medsleep", "dashboard", "--db", url, "--users", str(users),
         "--port", str(port), "--tz", "Europe/Zurich"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env, cwd=tree,
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


def _session(page: Any, base: str, index: int) -> dict[str, float]:
    """One clinician's session; session ``index`` opens the index-th patient of the digest, so
    no patient page (nor its 7-day range) is one the server has drawn before."""
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
    buttons = page.get_by_role("button", name="Open patient")
    buttons.nth(index % buttons.count()).click()
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


def measure_browser(url: str, work: Path, repeat: int, against: Path | None = None) -> None:
    from playwright.sync_api import sync_playwright

    variants = {"this checkout": None} | ({f"against {against}": against} if against else {})
    servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    load_before = os.getloadavg()
    try:
        for name, tree in variants.items():
            servers[name] = _serve(url, work, tree)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for index in range(repeat + 1):  # the first is cold: the server's caches are empty
                for name in reversed(variants):  # alternate: old, new, old, new …
                    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                    page.set_default_timeout(120_000)
                    runs[name].append(_session(page, servers[name][1], index))
                    page.context.close()
            browser.close()
    finally:
        for proc, _ in servers.values():
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    load_after = os.getloadavg()
    print(
        f"load average (1, 5, 15 min): {load_before[0]:.1f} {load_before[1]:.1f} "
        f"{load_before[2]:.1f} before, {load_after[0]:.1f} {load_after[1]:.1f} "
        f"{load_after[2]:.1f} after; {os.cpu_count()} CPUs; cold = first session on a fresh "
        f"server, warm = the next {repeat} (each opens a patient no session opened before); "
        f"ok / SLOW: the warm median against the "
        f"{TARGET_S:g} s target"
    )
    new = runs["this checkout"]
    for name, sessions in runs.items():
        print(f"\n{name}")
        _table(sessions, new if name != "this checkout" else None)


def _table(runs: list[dict[str, float]], new: list[dict[str, float]] | None) -> None:
    baseline = statistics.median(r["login form (baseline)"] for r in runs[1:])
    ratio = "  this checkout ÷ it" if new else ""
    print(
        f"{'browser step':>32}  {'cold':>7}  {'warm med':>8}  {'warm max':>8}  "
        f"{'× baseline':>10}{ratio}"
    )
    for step in runs[0]:
        warm = [r[step] for r in runs[1:]]
        # The target is for a warm server (the cold session includes the server's imports).
        met = statistics.median(warm) <= TARGET_S
        verdict = "" if step.endswith("(baseline)") else (" ok" if met else " SLOW")
        versus = ""
        if new:
            versus = (
                f"  {statistics.median(r[step] for r in new[1:]) / statistics.median(warm):10.2f}"
            )
        print(
            f"{step:>32}  {runs[0][step]:6.2f}s  {statistics.median(warm):7.2f}s  "
            f"{max(warm):7.2f}s  {statistics.median(warm) / baseline:9.1f}×{versus}{verdict}"
        )
