"""The ``assign`` command line: the only place that turns exceptions into messages and exit codes.

Exit codes: 0 success, 2 invalid input (the message names every problem), 1 internal error.
Each command family lives in its own module and registers itself on :data:`main`; heavy
libraries are imported inside the commands so that ``assign --help`` stays fast.
"""
from __future__ import annotations

import sys
import traceback

import click

from assign.errors import AssignError, InputError, ModelError

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2


class _Group(click.Group):
    """A click group whose commands report library errors as messages with exit codes."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (InputError, ModelError) as err:  # a bad or corrupt model dir is bad input too
            click.echo(f"error: {_printable(err)}", err=True)
            ctx.exit(EXIT_BAD_INPUT)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except AssignError as err:
            click.echo(f"error: {_printable(err)}", err=True)
            ctx.exit(EXIT_INTERNAL)
        except Exception as err:  # the last line of defence: never a bare traceback
            click.echo(f"internal error: {type(err).__name__}: {_printable(err)}", err=True)
            if "--debug" in sys.argv or (ctx.obj and ctx.obj.get("debug")):
                traceback.print_exc()
            ctx.exit(EXIT_INTERNAL)


def _printable(err: Exception) -> str:
    """The message, with anything stderr cannot encode (a lone surrogate) escaped."""
    return str(err).encode("utf-8", "backslashreplace").decode("utf-8")


@click.group(cls=_Group)
@click.version_option(package_name="assign")
@click.option("--debug", is_flag=True, help="Print tracebacks of internal errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Route customer contacts to agents: predicted match quality + capacitated assignment."""
    ctx.ensure_object(dict)["debug"] = debug


def _register() -> None:
    import importlib

    for name in ("solve", "model", "data", "sim", "experiment", "serve", "ope", "deploy", "monitor"):
        try:
            importlib.import_module(f"assign.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"assign.cli.{name}":
                raise


_register()
