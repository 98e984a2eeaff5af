"""The ``breaker`` Typer apps and what every command shares: exit codes, consoles, common
options, one-line errors (``friendly_errors``, ``usage_error``) and ``make_client``.

The commands live in ``calls``, ``circuits``, ``local`` and ``demo`` and register themselves
on ``app`` and ``local_app`` when imported; this module imports them last (they import the
names above), so importing it gives the whole CLI.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Annotated, NoReturn, ParamSpec, TypeVar

import typer
from botocore.exceptions import BotoCoreError
from rich.console import Console

from sfn_breaker.client import BreakerClient
from sfn_breaker.config import resolve_target
from sfn_breaker.contract import DEFAULT_STACK_NAME
from sfn_breaker.errors import (
    BreakerError,
    CircuitOpenError,
    CircuitStoreUnavailableError,
    InvalidRequestError,
    ServiceCallError,
)
from sfn_breaker.local.assembly import AppError  # the standard library only: cheap to import

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CIRCUIT_OPEN = 3
EXIT_SERVICE_FAILED = 4

app = typer.Typer(
    name="breaker",
    help="Call services through the serverless circuit breaker, and operate its circuits.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
local_app = typer.Typer(
    help="Run the breaker on an embedded AWS emulator on loopback: no AWS account needed.",
    no_args_is_help=True,
)
app.add_typer(local_app, name="local")


def version() -> str:
    """The installed package's version (``unknown`` when run from a tree that is not installed)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version("sfn-breaker")
    except PackageNotFoundError:
        return "unknown"


def _print_version(given: bool) -> None:
    if given:
        typer.echo(f"breaker (sfn-breaker) {version()}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _breaker(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Call services through the serverless circuit breaker, and operate its circuits."""


out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

StackName = Annotated[
    str,
    typer.Option("--stack-name", envvar="BREAKER_STACK_NAME", help="The breaker's CloudFormation stack."),
]
UseLocal = Annotated[
    bool,
    typer.Option("--local", help="Use the local emulator (`breaker local up`) even when AWS credentials are set."),
]

P = ParamSpec("P")
R = TypeVar("R")


def friendly_errors(command: Callable[P, R]) -> Callable[P, R]:
    """One clear line on stderr and a distinct exit code for every error a person can hit."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (CircuitOpenError, CircuitStoreUnavailableError) as exc:
            name = "CircuitOpen" if isinstance(exc, CircuitOpenError) else exc.error
            err.print(f"error: {name}\ncause: {exc.cause}", markup=False)
            raise typer.Exit(EXIT_CIRCUIT_OPEN) from None
        except ServiceCallError as exc:
            err.print(f"error: {exc.error}\ncause: {exc.message or exc.cause or '(none)'}", markup=False)
            raise typer.Exit(EXIT_SERVICE_FAILED) from None
        except InvalidRequestError as exc:
            err.print(f"error: {exc.error}: {exc.cause}", markup=False)
            raise typer.Exit(EXIT_USAGE) from None
        except BreakerError as exc:  # also sfn_breaker.errors.EmulatorError, a BreakerError
            err.print(f"error: {exc}", markup=False)
            raise typer.Exit(EXIT_ERROR) from None
        except BotoCoreError as exc:  # anything botocore says that the client did not translate
            err.print(f"error: {exc}", markup=False)
            raise typer.Exit(EXIT_ERROR) from None
        except OSError as exc:  # the machine said no: a folder that cannot be written, a process not ours, ...
            err.print(f"error: {exc}", markup=False)
            raise typer.Exit(EXIT_ERROR) from None
        except AppError as exc:  # an app the emulator cannot run, or a Node.js the CDK does not support
            usage_error(str(exc))

    return wrapper


def usage_error(message: str) -> NoReturn:
    err.print(f"error: {message}", markup=False)
    raise typer.Exit(EXIT_USAGE)


def make_client(stack_name: str, local: bool) -> BreakerClient:
    target = resolve_target(local=local)
    if target.emulator is not None and stack_name == DEFAULT_STACK_NAME:
        stack_name = target.emulator.stack_name  # the emulator runs one stack: yours, after `local up --app`
    return BreakerClient(stack_name=stack_name, session=target.session, endpoint_url=target.endpoint_url)


# The commands register themselves on `app` and `local_app` as they are imported, in the order
# `breaker --help` lists them. They import the names above, so they come last.
for _commands in ("calls", "circuits", "demo", "local"):
    importlib.import_module(f"sfn_breaker.cli.{_commands}")
