"""``breaker demo``: the outage story, played by ``sfn_breaker.demo``.

``sfn_breaker.demo`` is imported inside the command: it needs the ``local`` extra, and an
installation may leave it out. The defaults shown by ``--help`` are the demo's own
(``sfn_breaker.demo``), which only receives the options given.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Any

import typer

from sfn_breaker.cli.app import EXIT_ERROR, StackName, UseLocal, app, err, friendly_errors
from sfn_breaker.contract import DEFAULT_STACK_NAME
from sfn_breaker.extras import missing_extra

#: Exit status after Ctrl-C, as a shell reports a command ended by SIGINT (128 + 2).
EXIT_INTERRUPTED = 130


class Outage(enum.StrEnum):
    SLOW = "slow"
    FAIL = "fail"


class Where(enum.StrEnum):
    AUTO = "auto"
    LOCAL = "local"
    AWS = "aws"


@app.command()
@friendly_errors
def demo(
    outage: Annotated[
        Outage | None,
        typer.Option(
            "--outage",
            help="How the service goes down: every call hangs past the timeout, or fails.",
            show_default="slow",
        ),
    ] = None,
    callers: Annotated[
        int | None, typer.Option("--callers", min=1, help="How many callers call concurrently.", show_default="8")
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out-dir", help="Where the chart and the emulator's log go.", show_default="demo-output"),
    ] = None,
    chart: Annotated[
        bool | None, typer.Option("--chart/--no-chart", help="Write the PNG chart.", show_default="--chart")
    ] = None,
    where: Annotated[
        Where | None,
        typer.Option(
            "--where",
            help="local: an emulator in this process; aws: the deployed stack (AWS, or AWS_ENDPOINT_URL); "
            "auto: aws when credentials or AWS_ENDPOINT_URL are set, else local.",
            show_default="auto",
        ),
    ] = None,
    stack_name: StackName = DEFAULT_STACK_NAME,
    local: UseLocal = False,
) -> None:
    """Play the outage story (healthy -> down -> recovered) and show the breaker at work."""
    if local and where not in (None, Where.LOCAL):
        err.print(f"error: --local and --where {where} contradict each other; give one.", markup=False)
        raise typer.Exit(2)
    options: dict[str, Any] = {"outage": outage, "callers": callers, "out_dir": out_dir, "chart": chart}
    options["where"] = "local" if local else where
    if stack_name != DEFAULT_STACK_NAME:
        options["stack_name"] = stack_name
    try:
        from sfn_breaker.demo import run_demo

        run_demo(**{key: _plain(value) for key, value in options.items() if value is not None})
    except ModuleNotFoundError as exc:
        # The emulator (moto) and the chart (matplotlib) come with the local extra; they are
        # imported only once the demo knows it needs them.
        missing = missing_extra(exc, needed_by="`breaker demo`", extra="local")
        if missing is None:
            raise
        err.print(f"error: {missing}", markup=False)  # the extra's brackets are not rich markup
        raise typer.Exit(EXIT_ERROR) from None
    except KeyboardInterrupt as exc:
        # Once the story plays, the demo itself says it was interrupted and shows what it had
        # (sfn_breaker.demo.run.DemoInterrupted); before that there is nothing to show.
        if not getattr(exc, "reported", False):
            err.print("interrupted", markup=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value
