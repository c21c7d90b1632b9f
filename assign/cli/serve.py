"""``assign serve``: the routing service over HTTP (see docs/serve.md)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from assign.cli import main


@main.command()
@click.option("--model", type=click.Path(path_type=Path), help="Model directory (assign train) to score pairs.")
@click.option("--registry", help="Model registry alias to serve (not implemented yet: use --model).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--window-s", type=float, help="Turn on window mode: solve the waiting contacts every S seconds.")
@click.option("--token-file", type=click.Path(path_type=Path),
              help="File holding the bearer token (else the ASSIGN_SERVE_TOKEN environment variable).")
@click.option("--admin-token-file", type=click.Path(path_type=Path),
              help="File holding the admin token (else ASSIGN_SERVE_ADMIN_TOKEN); needed for POST /v1/model.")
@click.option("--no-auth", is_flag=True, help="Serve without a token (local development only).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Processes for stateless ticks (window mode needs 1).")
@click.option("--budget-ms", type=float, help="Default time budget of a tick (a request may pass ?budget_ms=).")
@click.option("--contact-timeout-s", type=float, default=2.0, show_default=True,
              help="Longest POST /v1/contacts waits for its decision before answering queued.")
@click.option("--max-body-bytes", type=click.IntRange(1), default=4 * 1024 * 1024, show_default=True)
@click.option("--tick-threads", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Threads solving stateless ticks in each process.")
@click.option("--quiet-ticks", is_flag=True, help="No log line per tick.")
@click.option("--print-openapi", is_flag=True, help="Print the OpenAPI document and exit.")
def serve(model: Path | None, registry: str | None, host: str, port: int, window_s: float | None,
          token_file: Path | None, admin_token_file: Path | None, no_auth: bool, workers: int,
          budget_ms: float | None, contact_timeout_s: float, max_body_bytes: int, tick_threads: int,
          quiet_ticks: bool, print_openapi: bool) -> None:
    """Serve the router over HTTP: POST /v1/tick, window mode, /healthz, /readyz, /metrics."""
    from assign.serve import ServeConfig
    from assign.serve import serve as run
    from assign.serve.auth import Tokens, load_tokens

    if registry is not None:
        raise click.UsageError("--registry needs the model registry, which does not exist yet: use --model DIR")
    if model is not None and not (model / "metadata.json").is_file():
        raise click.BadParameter(f"{model}: not a model directory (no metadata.json)", param_hint="--model")
    config = ServeConfig(model=str(model) if model else None, host=host, port=port, workers=workers,
                         window_s=window_s, auth=not no_auth, token_file=str(token_file) if token_file else None,
                         admin_token_file=str(admin_token_file) if admin_token_file else None,
                         budget_ms=budget_ms, max_body_bytes=max_body_bytes, contact_timeout_s=contact_timeout_s,
                         tick_threads=tick_threads, log_ticks=not quiet_ticks)
    if print_openapi:
        from assign.serve import create_app

        click.echo(json.dumps(create_app(config, tokens=Tokens(user=None, admin=None)).app.openapi(), indent=1))
        return
    load_tokens(config)  # every token problem before a worker starts
    if no_auth:
        click.echo("warning: serving without authentication (--no-auth)", err=True)
    run(config)
