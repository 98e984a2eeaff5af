"""``breaker``: call services through the circuit breaker and operate its circuits.

Exit codes: 0 success; 1 the breaker cannot be reached (no credentials, stack not deployed,
emulator not running, ...); 2 a bad request or bad usage (invalid JSON, unknown service, bad
option); 3 a fast fail: the service was not called (its circuit is open, or cannot be read
under a fail-fast policy); 4 the service failed or timed out on every attempt.

Where commands go (AWS, ``AWS_ENDPOINT_URL``, or the local emulator) is decided by
``circuit_breaker.config.resolve_target``.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from circuit_breaker.client import BreakerClient, CircuitChange
from circuit_breaker.config import resolve_target
from circuit_breaker.contract import DEFAULT_STACK_NAME
from circuit_breaker.core.model import CircuitState, CircuitView
from circuit_breaker.errors import (
    BreakerError,
    CircuitOpenError,
    CircuitStoreUnavailableError,
    InvalidRequestError,
    ServiceCallError,
)
from circuit_breaker.local.server import EmulatorError

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
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]

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
        except (BreakerError, EmulatorError) as exc:
            err.print(f"error: {exc}", markup=False)
            raise typer.Exit(EXIT_ERROR) from None

    return wrapper


def usage_error(message: str) -> NoReturn:
    err.print(f"error: {message}", markup=False)
    raise typer.Exit(EXIT_USAGE)


def make_client(stack_name: str, local: bool) -> BreakerClient:
    target = resolve_target(local=local)
    return BreakerClient(stack_name=stack_name, session=target.session, endpoint_url=target.endpoint_url)


# --------------------------------------------------------------------------- calling


@app.command()
@friendly_errors
def invoke(
    service: Annotated[str, typer.Argument(help="The registered service to call, e.g. payment.")],
    payload: Annotated[
        str | None, typer.Option("--payload", "-p", help='The payload, a JSON object, e.g. \'{"mode": "ok"}\'.')
    ] = None,
    payload_file: Annotated[
        Path | None, typer.Option("--payload-file", "-f", help="Read the payload from a JSON file ('-' for stdin).")
    ] = None,
    stack_name: StackName = DEFAULT_STACK_NAME,
    local: UseLocal = False,
) -> None:
    """Call SERVICE through the breaker and print its response (JSON).

    A fast fail exits with 3, a service failure or timeout with 4; both print the error and its
    cause to stderr.
    """
    if payload is not None and payload_file is not None:
        usage_error("give --payload or --payload-file, not both")
    body: Any = None
    if payload_file is not None:
        source = "--payload-file"
        try:
            text = sys.stdin.read() if str(payload_file) == "-" else payload_file.read_text()
        except OSError as exc:
            usage_error(f"cannot read {payload_file}: {exc.strerror or exc}")
        body = _parse_json(text, f"{source} {payload_file}")
    elif payload is not None:
        body = _parse_json(payload, "--payload")
    result = make_client(stack_name, local).call(service, body)
    typer.echo(json.dumps(result, indent=2))


def _parse_json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        usage_error(f"{source} is not valid JSON: {exc}")


# --------------------------------------------------------------------------- reading circuits


@app.command()
@friendly_errors
def status(
    service: Annotated[str | None, typer.Argument(help="One service; all circuits when left out.")] = None,
    as_json: AsJson = False,
    stack_name: StackName = DEFAULT_STACK_NAME,
    local: UseLocal = False,
) -> None:
    """Show circuit states (closed, open until T, half-open, forced open, forced closed) and last failures."""
    client = make_client(stack_name, local)
    views = [client.status(service)] if service else client.list()
    _show(views, as_json, single=service is not None)


@app.command("list")
@friendly_errors
def list_(
    as_json: AsJson = False,
    stack_name: StackName = DEFAULT_STACK_NAME,
    local: UseLocal = False,
) -> None:
    """List every circuit: each registered service, and any other circuit the table holds."""
    _show(make_client(stack_name, local).list(), as_json, single=False)


def _show(views: list[CircuitView], as_json: bool, *, single: bool) -> None:
    if as_json:
        documents = [view_json(v) for v in views]
        typer.echo(json.dumps(documents[0] if single else documents, indent=2))
        return
    if not views:
        out.print("No circuits.")
        return
    table = Table()
    for header in ("Service", "State", "Open until", "Last failure"):
        table.add_column(header, no_wrap=True)
    table.add_column("Cause", overflow="fold", ratio=1)
    for view in views:
        failed_at = _short_time(view.last_failure_at)
        failure = f"{view.last_error} {failed_at}" if view.last_error and failed_at else view.last_error or ""
        table.add_row(
            view.service,
            f"[{_STATE_STYLES.get(view.state, 'default')}]{view.state.value}[/]",
            _open_until(view),
            failure,
            _shorten(cause_message(view.last_cause), 100),
        )
    out.print(table)
    for view in views:
        if view.problem:
            err.print(f"warning: the item of {view.service} is not valid: {view.problem}", markup=False)


_STATE_STYLES = {
    CircuitState.CLOSED: "green",
    CircuitState.OPEN: "bold red",
    CircuitState.HALF_OPEN: "bold yellow",
    CircuitState.FORCED_OPEN: "bold magenta",
    CircuitState.FORCED_CLOSED: "yellow",
}


def view_json(view: CircuitView) -> dict[str, Any]:
    """A circuit for ``--json``: field names as in the README, times as ISO-8601 UTC."""
    return {
        "service": view.service,
        "state": view.state.value,
        "openUntil": _iso(view.open_until),
        "lastError": view.last_error,
        "lastCause": view.last_cause,
        "lastFailureAt": view.last_failure_at,
        "problem": view.problem,
    }


def cause_message(cause: str | None) -> str:
    """A Lambda error's ``errorMessage`` (with its type), else the cause as it is."""
    if not cause:
        return ""
    try:
        document = json.loads(cause)
    except ValueError:
        return cause
    if isinstance(document, dict) and "errorMessage" in document:
        return f"{document.get('errorType', 'Error')}: {document['errorMessage']}"
    return cause


def _open_until(view: CircuitView) -> str:
    if view.open_until is not None:
        moment = datetime.fromtimestamp(view.open_until, tz=UTC).isoformat()
        if view.state is CircuitState.HALF_OPEN:
            return f"{_short_time(moment)} (over)"  # half-open: the next call probes the service
        return f"{_short_time(moment)} ({_relative(view.open_until)})"
    if view.state is CircuitState.FORCED_OPEN:
        return "further notice"
    return ""


def _iso(epoch: int | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _short_time(iso: str | None) -> str | None:
    """A UTC time for people: ``08:28:10Z`` today, ``2026-11-24T08:28:10Z`` on another day."""
    if not iso:
        return None
    try:
        moment = datetime.fromisoformat(iso).astimezone(UTC)
    except ValueError:
        return iso
    if moment.date() == datetime.now(UTC).date():
        return moment.strftime("%H:%M:%SZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _relative(epoch: int) -> str:
    seconds = max(0, round(epoch - time.time()))
    if seconds >= 120:  # to the minute: the seconds are noise at that distance
        seconds = round(seconds / 60) * 60
    return f"in {format_duration(seconds)}"


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- operating circuits

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(text: str) -> int:
    """``30s``, ``10m``, ``2h``, ``1d``, ``1h30m`` or plain seconds, as whole seconds."""
    text = text.strip().lower()
    if text.isdigit():
        seconds = int(text)
    else:
        match = _DURATION.fullmatch(text)
        if not text or match is None:
            raise ValueError(f"{text!r} is not a duration like 30s, 10m, 2h or 1h30m")
        days, hours, minutes, secs = (int(group or 0) for group in match.groups())
        seconds = ((days * 24 + hours) * 60 + minutes) * 60 + secs
    if seconds <= 0:
        raise ValueError("the duration must be more than zero")
    return seconds


def format_duration(seconds: int) -> str:
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    if seconds or not parts:
        parts.append(f"{seconds}s")
    return "".join(parts)


def parse_time(text: str) -> datetime:
    """An ISO-8601 time; one without a zone is read as UTC (the table's clock)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an ISO-8601 time like 2026-11-23T09:00:00Z") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def describe(view: CircuitView) -> str:
    """A circuit's state in words: ``open until T``, ``forced open until further notice``, ..."""
    if view.state in (CircuitState.OPEN, CircuitState.FORCED_OPEN):
        return f"{view.state.value} until {_open_until(view)}"
    return view.state.value


@app.command("open")
@friendly_errors
def open_(
    service: Annotated[str, typer.Argument(help="The service whose circuit to open.")],
    for_: Annotated[str | None, typer.Option("--for", help="How long: 30s, 10m, 2h, 1h30m.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Until when (ISO-8601; UTC if no zone).")] = None,
    indefinitely: Annotated[bool, typer.Option("--indefinitely", help="Until `breaker close`.")] = False,
    reason: Annotated[str, typer.Option("--reason", help="A note kept on the circuit.")] = "",
    stack_name: StackName = DEFAULT_STACK_NAME,
    local: UseLocal = False,
) -> None:
    """Hold SERVICE's circuit open: calls fail fast and the service is not called."""
    chosen = [name for name, given in (("--for", for_), ("--until", until), ("--indefinitely", indefinitely)) if given]
    if len(chosen) != 1:
        usage_error(
            "say how long the circuit stays open with exactly one of --for 10m, --until 2026-11-23T09:00:00Z, "
            f"--indefinitely (given: {', '.join(chosen) or 'none'})"
        )
    try:
        seconds = parse_duration(for_) if for_ is not None else None
        moment = parse_time(until) if until is not None else None
    except ValueError as exc:
        usage_error(str(exc))
    change = make_client(stack_name, local).open(service, for_seconds=seconds, until=moment, reason=reason)
    ending = f"until `breaker close {service}`" if change.after.open_until is None else "until then"
    _confirm(change, f"Calls fail fast with CircuitOpen {ending}.")


@app.command()
@friendly_errors
def close(
    service: Annotated[str, typer.Argument(help="The service whose circuit to close.")],
    force: Annotated[
        bool, typer.Option("--force", help="Force it closed: always call the service, never open the circuit.")
    ] = False,
    reason: Annotated[str, typer.Option("--reason", help="A note kept on a forced circuit.")] = "",
    stack_name: StackName = DEFAULT_STACK_NAME,
    local: UseLocal = False,
) -> None:
    """Close SERVICE's circuit now (forced or not); with --force, keep it closed whatever fails."""
    client = make_client(stack_name, local)
    if force:
        change = client.force_closed(service, reason=reason)
        _confirm(
            change,
            f"Every call goes through and failures never open the circuit, until `breaker close {service}`.",
        )
    else:
        _confirm(client.close(service), "Calls go through again.")


def _confirm(change: CircuitChange, consequence: str) -> None:
    if not change.changed:
        out.print(f"{change.service}: already {describe(change.after)}; nothing changed.", markup=False)
        return
    out.print(f"{change.service}: {describe(change.before)} -> {describe(change.after)}. {consequence}", markup=False)


# --------------------------------------------------------------------------- the local emulator


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
    from circuit_breaker.local.server import default_state_file, start_background

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
    from circuit_breaker.local.server import default_state_file, stop_background

    state = stop_background(default_state_file())
    if state is None:
        out.print("No local emulator is running.")
    else:
        out.print(f"Local emulator at {state.endpoint_url} (pid {state.pid}) stopped.", markup=False)


# --------------------------------------------------------------------------- the demo


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
    try:
        from circuit_breaker.demo import run_demo
    except ModuleNotFoundError as exc:
        if exc.name == "circuit_breaker.demo":
            err.print("error: `breaker demo` is not part of this installation (circuit_breaker/demo.py is missing).")
        else:
            err.print(
                f"error: `breaker demo` needs {exc.name}: install the local extra, pip install 'circuit-breaker[local]'."
            )
        raise typer.Exit(EXIT_ERROR) from None
    options: dict[str, Any] = {"outage": outage, "callers": callers, "out_dir": out_dir, "chart": chart}
    options["where"] = "local" if local else where
    if stack_name != DEFAULT_STACK_NAME:
        options["stack_name"] = stack_name
    run_demo(**{key: value for key, value in options.items() if value is not None})


def main() -> None:
    """The ``breaker`` console script."""
    app()


if __name__ == "__main__":
    main()
