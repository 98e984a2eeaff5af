"""``breaker local up`` and ``breaker local down``: the emulator in the background.

The emulator modules are imported inside the commands: they need the ``local`` extra, which
the other commands do not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from circuit_breaker.cli.app import err, friendly_errors, local_app, out, usage_error


@local_app.command("up")
@friendly_errors
def local_up(
    port: Annotated[int, typer.Option("--port", help="The loopback port; 0 picks a free one.")] = 0,
    setting: Annotated[
        list[str] | None,
        typer.Option(
            "--setting",
            "-s",
            help="A breaker setting for the local stack, NAME=VALUE (e.g. openDurationSeconds=10); repeatable.",
        ),
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for it to be ready.")] = 180.0,
    assembly: Annotated[Path | None, typer.Option("--assembly", hidden=True)] = None,
) -> None:
    """Start the emulator in the background: synthesize the app, deploy it into moto, serve it."""
    from circuit_breaker.local.background import start_background
    from circuit_breaker.local.state import default_state_file

    overrides = {"circuit-breaker": _settings(setting or [])} if setting else None
    state_file = default_state_file()
    with err.status("Starting the local emulator: synthesizing the CDK app and deploying it into moto..."):
        started = start_background(
            state_file, port=port, context_overrides=overrides, assembly_dir=assembly, timeout=timeout
        )
    state = started.state
    if started.already_running:
        out.print(f"Local emulator already running at {state.endpoint_url} (pid {state.pid}).", markup=False)
        if overrides or port:
            err.print("warning: its settings are unchanged; run `breaker local down` first to restart it.")
        return
    out.print(f"Local emulator running at {state.endpoint_url} (pid {state.pid}).", markup=False)
    out.print(
        f"The breaker CLI uses it when no AWS credentials are configured (or with --local). Its log: {state.log_file}\n"
        f"For other AWS tools: export AWS_ENDPOINT_URL={state.endpoint_url} AWS_DISABLE_HOST_PREFIX_INJECTION=true",
        markup=False,
    )


def _settings(pairs: list[str]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name.strip():
            usage_error(f"--setting takes NAME=VALUE, e.g. openDurationSeconds=10, not {pair!r}")
        try:
            settings[name.strip()] = json.loads(raw)
        except ValueError:
            settings[name.strip()] = raw
    return settings


@local_app.command("down")
@friendly_errors
def local_down() -> None:
    """Stop the background emulator (its circuits and executions are gone with it)."""
    from circuit_breaker.local.background import stop_background
    from circuit_breaker.local.state import default_state_file

    state = stop_background(default_state_file())
    if state is None:
        out.print("No local emulator is running.")
    else:
        out.print(f"Local emulator at {state.endpoint_url} (pid {state.pid}) stopped.", markup=False)
