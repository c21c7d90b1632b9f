"""Load benchmark of the routing service over HTTP (``assign serve`` in a child process).

    python -m benchmarks.serve [--quick] --json OUT [--workers N] [--window-s S]

Tick: closed-loop clients post 200-contact snapshots (seeded synthetic centres,
``--tick-agents`` agents) to ``/v1/tick`` at rising concurrency; each level runs for a fixed
time and reports throughput and latency. Window: 1000 agents logged in by ``PUT
/v1/agents``; contacts arrive as a Poisson process at 100 and 300 per second by ``POST
/v1/contacts``; a contact answered "queued" is followed with ``GET ?wait_ms=`` until
decided; every assigned contact is ended (``DELETE``) after an exponential handle time. The
generator keeps its own books, independent of the server: a contact is *lost* if it was
accepted and later unknown without having been ended, *double-assigned* if two answers
name different agents; ``over_capacity`` counts answers that would put an agent-channel over
its capacity, counting a contact as ended from the moment its DELETE is sent.

The load generator and the server share the machine (say so with the figures).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

from assign.serve.process import ServerProcess
from assign.workload import synthetic_snapshot
from benchmarks._rawhttp import RawClient

TOKEN = "benchmark-token-0123456789abcdef"


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process and its children (Linux /proc), else None."""
    tick = os.sysconf("SC_CLK_TCK")
    total, found = 0.0, False
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(d.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
            found = True
    return total if found else None


def _pct(xs: list[float], q: float) -> float | None:
    return round(float(np.percentile(xs, q)), 2) if xs else None


# ----------------------------------------------------------------------------- tick


TRANSPORT_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)


async def _tick_level(url: str, bodies: list[bytes], *, concurrency: int, seconds: float,
                      server_pid: int | None = None) -> dict:
    lat: list[float] = []
    errors = 0
    cpu0 = (time.process_time(), cpu_seconds(server_pid) if server_pid else None)
    stop = time.perf_counter() + seconds
    client = RawClient(url, token=TOKEN, size=concurrency)

    async def worker(k: int) -> None:
        nonlocal errors
        i = k
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            try:
                status, _ = await client.request("POST", "/v1/tick", body=bodies[i % len(bodies)])
            except TRANSPORT_ERRORS:
                status = 0
            if status == 200:
                lat.append((time.perf_counter() - t0) * 1e3)
            else:
                errors += 1
            i += concurrency

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    elapsed = time.perf_counter() - t0
    await client.close()
    row = {"concurrency": concurrency, "rps": round(len(lat) / elapsed, 1), "p50_ms": _pct(lat, 50),
           "p99_ms": _pct(lat, 99), "errors": errors}
    n = max(len(lat), 1)
    row["client_cpu_ms_per_request"] = round((time.process_time() - cpu0[0]) * 1e3 / n, 2)
    if cpu0[1] is not None:
        row["server_cpu_ms_per_request"] = round((cpu_seconds(server_pid) - cpu0[1]) * 1e3 / n, 2)
    return row


def bench_tick(*, quick: bool, workers: int, n_agents: int, log_dir: Path) -> list[dict]:
    bodies = [json.dumps(synthetic_snapshot(n_contacts=200, n_agents=n_agents, seed=100 + k).to_dict()).encode()
              for k in range(8 if quick else 24)]
    levels = (1, 4, 8) if quick else (1, 2, 4, 8, 16)
    seconds = 3.0 if quick else 10.0
    rows = []
    with ServerProcess("--workers", str(workers), "--quiet-ticks", token=TOKEN, log_path=log_dir / "tick.log") as srv:
        asyncio.run(_tick_level(srv.url, bodies, concurrency=workers * 2, seconds=2.0))  # every worker warm
        for c in tqdm(levels, desc="tick concurrency", file=sys.stderr):
            rows.append(asyncio.run(_tick_level(srv.url, bodies, concurrency=c, seconds=seconds,
                                                server_pid=srv.proc.pid)))
            tqdm.write(json.dumps(rows[-1]), file=sys.stderr)
    return rows


# ----------------------------------------------------------------------------- window


class Books:
    """The generator's own record of every contact: answers, agents, ends."""

    def __init__(self, caps: dict[str, dict[str, int]]) -> None:
        self.caps = caps
        self.agent_of: dict[str, str] = {}
        self.channel_of: dict[str, str] = {}
        self.holding: Counter = Counter()
        self.ended: set[str] = set()
        self.accepted: set[str] = set()
        self.decision_ms: list[float] = []
        self.double = self.over = 0
        self.error_kinds: Counter = Counter()

    @property
    def errors(self) -> int:
        return sum(self.error_kinds.values())

    def error(self, kind: str) -> None:
        self.error_kinds[kind] += 1

    def assigned(self, cid: str, agent: str, *, ms: float) -> bool:
        """Record an answer naming ``agent``; True the first time the contact is assigned."""
        old = self.agent_of.get(cid)
        if old is not None:
            self.double += old != agent
            return False
        self.agent_of[cid] = agent
        key = (agent, self.channel_of[cid])
        self.holding[key] += 1
        self.over += self.holding[key] > self.caps[agent].get(key[1], 0)
        self.decision_ms.append(ms)
        return True

    def ending(self, cid: str) -> None:
        self.ended.add(cid)
        self.holding[(self.agent_of[cid], self.channel_of[cid])] -= 1


async def _contact_life(client: RawClient, books: Books, rec: dict, *, rng, handle_s: float,
                        timeout_s: float) -> None:
    cid = rec["contact_id"]
    books.channel_of[cid] = rec["channel"]
    t0 = time.perf_counter()
    try:
        status, body = await client.request("POST", "/v1/contacts", json_body=rec)
        while status == 202:
            books.accepted.add(cid)
            if time.perf_counter() - t0 > timeout_s:
                return  # still queued at the end: not lost, not decided
            status, body = await client.request("GET", f"/v1/contacts/{cid}", params={"wait_ms": 1000})
        answer = json.loads(body) if status == 200 else {}
        if answer.get("status") != "assigned":
            books.error(f"decision {status} {answer.get('status')}")
            return
        books.accepted.add(cid)
        if not books.assigned(cid, answer["agent_id"], ms=(time.perf_counter() - t0) * 1e3):
            return
        await asyncio.sleep(float(rng.exponential(handle_s)))
        status, body = await client.request("GET", f"/v1/contacts/{cid}")
        if status != 200:
            books.error(f"check {status}")
        elif json.loads(body).get("agent_id") != books.agent_of[cid]:
            books.double += 1
        books.ending(cid)
        status, _ = await client.request("DELETE", f"/v1/contacts/{cid}")
        if status != 200:
            books.error(f"end {status}")
    except TRANSPORT_ERRORS as err:
        books.error(type(err).__name__)


async def _window_run(url: str, *, rate: float, seconds: float, n_agents: int, seed: int,
                      server_pid: int | None = None) -> dict:
    rng = np.random.default_rng(seed)
    snap = synthetic_snapshot(n_contacts=int(rate * seconds * 1.3) + 50, n_agents=n_agents, seed=seed,
                              load_share=0.0, snapshot_id=f"w{seed}")
    doc = snap.to_dict()
    agents = {a["agent_id"]: a for a in doc["agents"]}
    books = Books({aid: a["capacity"] for aid, a in agents.items()})
    client = RawClient(url, token=TOKEN, size=1000)
    sem = asyncio.Semaphore(50)

    async def put(aid, a):
        async with sem:
            status, _ = await client.request("PUT", f"/v1/agents/{aid}", json_body=a)
            if status != 200:
                books.error(f"agent {status}")

    await asyncio.gather(*(put(aid, a) for aid, a in agents.items()))
    cpu0 = (time.process_time(), cpu_seconds(server_pid) if server_pid else None)
    tasks, t0, k = [], time.perf_counter(), 0
    next_t = t0
    contacts = doc["contacts"]
    while next_t - t0 < seconds and k < len(contacts):
        await asyncio.sleep(max(0.0, next_t - time.perf_counter()))
        rec = {**contacts[k], "language": "en", "contact_id": f"w{seed}-{contacts[k]['contact_id']}"}
        tasks.append(asyncio.create_task(_contact_life(client, books, rec, rng=rng, handle_s=3.0,
                                                       timeout_s=seconds)))
        k += 1
        next_t += float(rng.exponential(1.0 / rate))
    arrivals = k / (time.perf_counter() - t0)
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - t0
    lost = 0
    for cid in books.accepted - books.ended:  # accepted, never ended by us: the server must know it
        status, _ = await client.request("GET", f"/v1/contacts/{cid}")
        lost += status == 404
    await client.close()
    row = {"arrivals_per_s": rate, "decision_p50_ms": _pct(books.decision_ms, 50),
           "decision_p99_ms": _pct(books.decision_ms, 99), "lost": lost, "double_assigned": books.double,
           "errors": books.errors, "error_kinds": dict(books.error_kinds), "over_capacity": books.over,
           "contacts": k, "assigned": len(books.agent_of),
           "measured_arrivals_per_s": round(arrivals, 1),
           "client_cpu_share": round((time.process_time() - cpu0[0]) / wall, 3)}
    if cpu0[1] is not None:
        server_cpu = cpu_seconds(server_pid) - cpu0[1]
        row["server_cpu_share"] = round(server_cpu / wall, 3)
        row["server_cpu_ms_per_contact"] = round(server_cpu * 1e3 / max(k, 1), 2)
    return row


def bench_window(*, quick: bool, window_s: float, log_dir: Path) -> list[dict]:
    rows = []
    seconds = 5.0 if quick else 20.0
    for n, rate in enumerate(tqdm((100.0, 300.0), desc="window arrivals", file=sys.stderr)):
        with ServerProcess("--window-s", str(window_s), "--contact-timeout-s", "2", token=TOKEN,
                           log_path=log_dir / f"window-{int(rate)}.log") as srv:
            rows.append(asyncio.run(_window_run(srv.url, rate=rate, seconds=seconds, n_agents=1000, seed=n,
                                                server_pid=srv.proc.pid)))
        tqdm.write(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="Fewer levels, shorter runs (a smoke test).")
    ap.add_argument("--json", dest="out", required=True, help="Write the results here.")
    ap.add_argument("--workers", type=int, default=2, help="Server processes for the tick benchmark.")
    ap.add_argument("--tick-agents", type=int, default=200, help="Agents in each 200-contact tick snapshot.")
    ap.add_argument("--window-s", type=float, default=0.5)
    ap.add_argument("--only", choices=("tick", "window"), help="Run one part only.")
    args = ap.parse_args(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="assign-serve-bench-"))
    load_before = os.getloadavg()
    out: dict = {"tick": [], "window": []}
    if args.only in (None, "tick"):
        out["tick"] = bench_tick(quick=args.quick, workers=args.workers, n_agents=args.tick_agents, log_dir=log_dir)
    if args.only in (None, "window"):
        out["window"] = bench_window(quick=args.quick, window_s=args.window_s, log_dir=log_dir)
    out["setup"] = {"tick_snapshot": {"contacts": 200, "agents": args.tick_agents}, "workers": args.workers,
                    "window_s": args.window_s, "window_agents": 1000, "quick": args.quick,
                    "cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine(),
                    "note": "server and load generator on the same machine", "server_logs": str(log_dir),
                    "loadavg_1min_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)]}
    Path(args.out).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
