"""Throw-away PostgreSQL and Redis servers of the benchmarks' own, on loopback ports.

``throughput.py`` and ``scale.py`` never touch the servers the test suite uses (5432, 6379):
they start a PostgreSQL cluster in a temporary directory (port 5433 by default) and a Redis
without persistence (6380), stop and start them to inject faults, and remove them at the end.
Both listen on 127.0.0.1 only and trust local connections.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def _wait_port(port: int, *, up: bool, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                listening = True
        except OSError:
            listening = False
        if listening == up:
            return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} still {'closed' if up else 'open'} after {timeout} s")


def _free(port: int) -> None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            pass
    except OSError:
        return
    raise RuntimeError(f"port {port} is in use: pass another one")


class Postgres:
    """A PostgreSQL cluster of its own in a temporary directory."""

    def __init__(self, port: int = 5433) -> None:
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="passkeys-bench-pg-"))
        self.data = self.dir / "data"
        bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[4]))
        if bindirs:
            self.bin = Path(bindirs[-1])
        else:  # pg_config on the PATH (another layout)
            out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
            self.bin = Path(out.stdout.strip())
        # The server refuses to run as root: run it as the postgres user when we are root.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.dir, "postgres")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True)

    def create(self) -> None:
        _free(self.port)
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        self.start()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.dir / "server.log"), "-w", "-t", "60", "start",
        )  # fmt: skip
        _wait_port(self.port, up=True)

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        _wait_port(self.port, up=False)

    def destroy(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class Redis:
    """A Redis server of its own, without persistence."""

    def __init__(self, port: int = 6380) -> None:
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="passkeys-bench-redis-"))
        self.pidfile = self.dir / "redis.pid"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def create(self) -> None:
        _free(self.port)
        self.start()

    def start(self) -> None:
        subprocess.run(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--daemonize", "yes",
                "--dir", str(self.dir), "--pidfile", str(self.pidfile),
                "--logfile", str(self.dir / "redis.log"),
            ],
            check=True,
        )  # fmt: skip
        _wait_port(self.port, up=True)

    def stop(self) -> None:
        pid = int(self.pidfile.read_text().strip())
        os.kill(pid, 15)  # our own server, by its pid
        _wait_port(self.port, up=False)
        deadline = time.monotonic() + 10
        while self.pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    def destroy(self) -> None:
        try:
            if self.pidfile.exists():
                self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
