"""A fresh database and a real uvicorn server in a subprocess (for fuzzing and benchmarks)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Server:
    base_url: str
    database_url: str
    process: subprocess.Popen
    admin_key: str

    def rss_kib(self) -> int:
        return _status_kib(self.process.pid, "VmRSS")

    def peak_rss_kib(self) -> int:
        return _status_kib(self.process.pid, "VmHWM")


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found")


@contextlib.contextmanager
def fresh_database(postgres_url: str | None) -> Iterator[str]:
    if postgres_url is None:
        with tempfile.TemporaryDirectory(prefix="silospan-bench-") as folder:
            yield f"sqlite:///{folder}/bench.db"
        return
    name = f"silospan_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(make_url(postgres_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _wait_until_up(base_url: str, process: subprocess.Popen, seconds: float = 90) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_server(database_url: str) -> Iterator[Server]:
    env = {**os.environ, "SILOSPAN_DATABASE_URL": database_url, "SILOSPAN_LOG_LEVEL": "WARNING"}
    run = [sys.executable, "-m", "service.cli"]
    subprocess.run([*run, "migrate"], env=env, check=True, cwd=ROOT, capture_output=True)
    admin_key = subprocess.run(
        [*run, "keys", "create", "--name", "bench", "--role", "admin"],
        env=env, check=True, cwd=ROOT, capture_output=True, text=True,
    ).stdout.strip()
    for attempt in range(3):  # another process may take the free port first
        port = _free_port()
        # Open for the server's lifetime; closed when it stops.
        log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            prefix="silospan-server-", suffix=".log", delete=False
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "service.main:create_app", "--factory",
             "--port", str(port), "--log-level", "warning", "--no-access-log"],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
        base_url = f"http://127.0.0.1:{port}"
        if _wait_until_up(base_url, process):
            break
        process.terminate()
        process.wait(timeout=30)
        log.close()
        output = Path(log.name).read_text()[-2000:]
        Path(log.name).unlink(missing_ok=True)
        if attempt == 2:
            raise RuntimeError(f"the server did not start:\n{output}")
    try:
        yield Server(base_url, database_url, process, admin_key)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        Path(log.name).unlink(missing_ok=True)
