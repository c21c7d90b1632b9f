"""Loading model directories in a separate process, so that the process that routes does not pay.

Why (issue 10, the hot swap): a load is ~0.4 s of CPU, most of it Python (parsing the boosters'
JSON, packing the trees, indexing the customers). Run in a thread of the routing process, it
shares the GIL with the ticks: each time a tick releases the GIL (in numpy, numba, xgboost or
OR-Tools) the loader takes it and the tick waits up to the interpreter's switch interval, or
the whole of a long C call (one ``json.loads`` of a booster holds it ~7 ms), to get it back.
Measured, that made the ticks overlapping a load up to 4x the median tick.

:class:`LoadWorker` runs :meth:`ModelDir.load <assign.model.scorer.ModelDir.load>` in one
long-lived child process (a fresh interpreter running :func:`serve_fd`: no locks or
OpenMP pools inherited from a threaded parent, and the parent's ``__main__`` is not re-run; at
a lower CPU priority, so on a busy machine the ticks come first) and sends the
loaded model back pickled. A :class:`~assign.model.scorer.ModelDir` is plain arrays, boosters
and small metadata (the customer index included: no Python object per customer), so the
routing process only copies a few buffers and rebuilds the boosters from their bytes in
xgboost's C library, which runs without the GIL. Errors come back as the exception the load
raised; a worker that dies or hangs is replaced at the next load.
"""
from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from assign.errors import ModelError

#: Niceness added to the worker: a load may take longer, a tick must not.
WORKER_NICE = 19


class LoadWorker:
    """One child process that loads model directories (module doc); thread-safe, one load at a time.

    ``timeout_s``: the longest a load may take before the worker is killed and the load fails.
    The process starts at the first :meth:`load` (or :meth:`start`) and ends with :meth:`close`,
    or when this process ends (the child sees its socket close)."""

    def __init__(self, *, timeout_s: float = 300.0) -> None:
        self.timeout_s = float(timeout_s)
        self._lock = threading.Lock()
        self._proc: Any = None
        self._conn: Any = None
        self._stderr: Any = None
        #: ``(step, start, end)`` (``time.perf_counter``) of the last load: "worker" (the child
        #: loading; this process waits without the GIL) and "handover" (receiving and unpickling)
        self.last_steps: list[tuple[str, float, float]] = []

    def start(self) -> LoadWorker:
        """Start the child now (it takes a few seconds to import), rather than at the first load."""
        with self._lock:
            self._ensure()
        return self

    def load(self, path: str | Path, *, nthread: int = 2, parallel_from: int = 32768):
        """``ModelDir.load(path, nthread=, parallel_from=)`` done in the child; raises what it raised."""
        from assign.model.scorer import require_model_files

        p = require_model_files(path)  # the plain "no model here" answer needs no process
        with self._lock:
            self._ensure()
            try:
                t0 = time.perf_counter()
                self._conn.send((str(p.resolve()), int(nthread), int(parallel_from)))
                if not self._conn.poll(self.timeout_s):
                    self._stop()
                    raise ModelError(f"{p}: the load worker took over {self.timeout_s:g} s; stopped it")
                t1 = time.perf_counter()
                status, value = pickle.loads(self._conn.recv_bytes())
                self.last_steps = [("worker", t0, t1), ("handover", t1, time.perf_counter())]
            except (EOFError, OSError) as err:
                tail = self._stderr_tail()
                code = self._stop()
                raise ModelError(f"{p}: the load worker died (exit code {code}; {type(err).__name__}){tail}") from err
        if status != "ok":
            raise value
        return value

    def close(self) -> None:
        """Stop the child (a later :meth:`load` starts a new one)."""
        with self._lock:
            self._stop()

    def __enter__(self) -> LoadWorker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _ensure(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        self._stop()
        mine, theirs = socket.socketpair()
        root = str(Path(__file__).resolve().parents[2])  # the directory holding the assign package
        # One OpenMP thread (with nice 19): with xgboost's default threads and nice 10 the ticks ran
        # up to 4.4x slower during a load (benchmarks.hot_swap, 2 cores); with both, at most 1.7x.
        env = {**os.environ, "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        self._stderr = tempfile.TemporaryFile()
        code = f"from assign.model.offload import serve_fd; serve_fd({theirs.fileno()})"
        self._proc = subprocess.Popen([sys.executable, "-c", code],
                                      pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=self._stderr, env=env)
        theirs.close()
        self._conn = Connection(mine.detach())

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        return f": {lines[-1]}" if lines else ""

    def _stop(self) -> int | None:
        proc, conn, err, self._proc, self._conn, self._stderr = self._proc, self._conn, self._stderr, None, None, None
        if conn is not None:
            try:
                conn.send(None)
            except (OSError, ValueError):
                pass
            conn.close()
        if err is not None:
            err.close()
        if proc is None:
            return None
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return proc.returncode


def _serve(conn) -> None:
    """The child's loop: a path in, ``("ok", ModelDir)`` or ``("error", exception)`` out (pickled)."""
    try:
        os.nice(WORKER_NICE)
    except (AttributeError, OSError):  # not on this platform: loads just compete as equals
        pass
    from assign.model.scorer import ModelDir

    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        path, nthread, parallel_from = msg
        try:
            out = pickle.dumps(("ok", ModelDir.load(path, nthread=nthread, parallel_from=parallel_from)),
                               protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as err:
            out = _pickled_error(err)
        conn.send_bytes(out)


def _pickled_error(err: Exception) -> bytes:
    """The error as sent to the parent: itself if it pickles, else a ModelError with its text."""
    try:
        out = pickle.dumps(("error", err), protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(out)
        return out
    except Exception:
        return pickle.dumps(("error", ModelError(f"{type(err).__name__}: {err}")), protocol=pickle.HIGHEST_PROTOCOL)


def serve_fd(fd: int) -> None:
    """The child's entry point: serve loads on the connected socket ``fd`` until told to stop."""
    _serve(Connection(fd))


if __name__ == "__main__":  # python -m assign.model.offload FD: the same child, started by hand
    serve_fd(int(sys.argv[1]))
