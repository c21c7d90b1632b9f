"""Offline discrete-event simulator: sources (synthetic world, queueing scenarios, replays),
the engine, routing policies, KPIs with intervals, Dask replications and reports.
See docs/simulation.md."""
