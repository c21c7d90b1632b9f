"""A router's tick loop calling the library: load once, tick every window.

    python examples/router_loop.py

Each window the service hands over the contacts waiting and the agents with free capacity;
here a synthetic snapshot per window stands in for that. A failed scorer or solver still
answers (``result.fallback``), so the loop never stalls on one bad tick.
"""
from __future__ import annotations

from assign import RouterConfig
from assign.errors import SnapshotError
from assign.router import Router
from assign.workload import synthetic_snapshot


def main() -> None:
    router = Router(config=RouterConfig(budget_ms=200.0))  # numba compiled here, not in a tick
    for window in range(5):
        snapshot = synthetic_snapshot(n_contacts=120, n_agents=80, seed=window, snapshot_id=f"window-{window}")
        try:
            result = router.tick(snapshot)
        except SnapshotError as err:  # bad input from upstream: log every problem, skip the window
            print(err)
            continue
        flag = f" FALLBACK: {result.fallback_reason}" if result.fallback else ""
        print(f"{result.snapshot_id}: {len(result.assignments)} routed, {len(result.unassigned)} queued, "
              f"value {result.objective:.1f}, {result.solver} in {result.timings_ms['total']:.1f} ms{flag}")


if __name__ == "__main__":
    main()
