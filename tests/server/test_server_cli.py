"""``medsleep serve`` as an operator starts it: a process, several workers, settings from
options and the environment, clean refusals before anything listens."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from medsleep.auth.tokens import add_token, token_digest
from medsleep.cli import app
from tests.helpers import ndjson_of, observation

runner = CliRunner()
MEDSLEEP = [sys.executable, "-c", "from medsleep.cli import main; main()"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("serve did not become healthy")


def test_serve_with_two_workers_and_env_tokens(tmp_path: Path, sqlite_url: str) -> None:
    file_token = add_token(tmp_path / "tokens.toml", "file")
    env = {
        **os.environ,
        "MEDSLEEP_TOKENS_FILE": str(tmp_path / "tokens.toml"),
        "MEDSLEEP_TOKENS": f"env:{token_digest('msk_from-env')}:write",
        "MEDSLEEP_DB": sqlite_url,
    }
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    args = ["serve", "--port", str(port), "--workers", "2", "--no-access-log"]
    proc = subprocess.Popen([*MEDSLEEP, *args], env=env, stderr=subprocess.PIPE)
    try:
        _wait_healthy(base, proc)
        body = ndjson_of([observation(f"o{i}") for i in range(20)])
        headers = {"Content-Type": "application/fhir+ndjson"}
        for token in (file_token, "msk_from-env"):
            response = httpx.post(
                f"{base}/fhir/$ingest",
                content=body,
                headers={**headers, "Authorization": f"Bearer {token}"},
                timeout=30,
            )
            assert response.status_code == 200, response.text
        assert response.json()["duplicates"] == 20  # same store behind both workers
        search = httpx.get(
            f"{base}/fhir/Observation",
            params={"patient": "p1"},
            headers={"Authorization": "Bearer msk_from-env"},
        )
        assert search.status_code == 403  # the env token has write scope only
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_serve_refuses_to_start_without_tokens(tmp_path: Path, sqlite_url: str) -> None:
    result = subprocess.run(
        [*MEDSLEEP, "serve", "--db", sqlite_url, "--tokens", str(tmp_path / "none.toml")],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "MEDSLEEP_TOKENS"},
    )
    assert result.returncode == 1
    assert "no tokens" in result.stderr
    assert "medsleep token add" in result.stderr


def test_serve_usage_errors_exit_2(tmp_path: Path, sqlite_url: str) -> None:
    add_token(tmp_path / "t.toml", "x")
    common = ["serve", "--db", sqlite_url, "--tokens", str(tmp_path / "t.toml")]
    assert runner.invoke(app, [*common, "--fhir-version", "R9"]).exit_code == 2
    assert runner.invoke(app, [*common, "--default-tz", "Mars/Olympus"]).exit_code == 2
    assert runner.invoke(app, [*common, "--port", "0"]).exit_code == 2
