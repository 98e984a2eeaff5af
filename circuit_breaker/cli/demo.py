"""``breaker demo``: the outage story, played by ``circuit_breaker.demo``.

``circuit_breaker.demo`` is imported inside the command: it needs the ``local`` extra, and an
installation may leave it out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from circuit_breaker.cli.app import EXIT_ERROR, StackName, UseLocal, app, err, friendly_errors
from circuit_breaker.contract import DEFAULT_STACK_NAME


@app.command()
@friendly_errors
def demo(
    outage: Annotated[str | None, typer.Option("--outage", help="How the service goes down: slow or fail.")] = None,
    callers: Annotated[int | None, typer.Option("--callers", help="How many callers call concurrently.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out-dir", help="Where the chart is written.")] = None,
    chart: Annotated[bool | None, typer.Option("--chart/--no-chart", help="Write the PNG chart.")] = None,
    where: Annotated[
        str | None, typer.Option("--where", help="auto, local (an in-process emulator) or aws (the deployed stack).")
    ] = None,
    stack_name: StackName = DEFAULT_STACK_NAME,
    local: UseLocal = False,
) -> None:
    """Play the outage story (healthy -> down -> recovered) and show the breaker at work."""
    options: dict[str, Any] = {"outage": outage, "callers": callers, "out_dir": out_dir, "chart": chart}
    options["where"] = "local" if local else where
    if stack_name != DEFAULT_STACK_NAME:
        options["stack_name"] = stack_name
    try:
        from circuit_breaker.demo import run_demo

        run_demo(**{key: value for key, value in options.items() if value is not None})
    except ModuleNotFoundError as exc:
        # The emulator (moto) and the chart (matplotlib) come with the local extra; they are
        # imported only once the demo knows it needs them.
        err.print(
            f"error: `breaker demo` needs {exc.name}: install the local extra, pip install 'circuit-breaker[local]'.",
            markup=False,  # the extra's brackets are not rich markup
        )
        raise typer.Exit(EXIT_ERROR) from None
