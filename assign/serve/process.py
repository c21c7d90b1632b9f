"""The service as a child process on a free port: for the tests and the load benchmark,
which drive it over real HTTP the way a platform would."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``python -m assign serve ARGS --port P`` as a child; :meth:`start` waits for /readyz.

    The token goes through the environment (``ASSIGN_SERVE_TOKEN``); stderr (JSON log
    lines) is kept in ``log_path``.
    """

    def __init__(self, *args: str, token: str | None, log_path: str | Path, env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args, self.token, self.log_path = list(args), token, Path(log_path)
        self.env = dict(env or {})
        self.proc: subprocess.Popen | None = None

    def start(self, *, timeout_s: float = 120.0) -> ServerProcess:
        env = {**os.environ, **self.env, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        if self.token is not None:
            env["ASSIGN_SERVE_TOKEN"] = self.token
        cmd = [sys.executable, "-m", "assign", "serve", *self.args, "--port", str(self.port)]
        if self.token is None:
            cmd.append("--no-auth")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server not ready within {timeout_s} s: {self.log()}")

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def terminate(self) -> None:
        """Send SIGTERM (graceful drain) without waiting."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, *, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, wait; SIGKILL if it does not exit in time. Returns the exit code."""
        if self.proc is None:
            return None
        self.terminate()
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
