"""Reading and operating circuits: ``breaker status``, ``list``, ``open``, ``close`` and ``resync``."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from sfn_breaker.cli.app import StackName, UseLocal, app, err, friendly_errors, make_client, out, usage_error
from sfn_breaker.cli.formatting import (
    STATE_STYLES,
    cause_message,
    describe,
    open_until,
    parse_duration,
    parse_time,
    short_time,
    shorten,
    view_json,
)
from sfn_breaker.client import CircuitChange, CircuitReport, ShardRepair
from sfn_breaker.contract import DEFAULT_STACK_NAME

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]


# --------------------------------------------------------------------------- reading circuits


@app.command()
@friendly_errors
def status(
    service: Annotated[str | None, typer.Argument(help="One service; all circuits when left out.")] = None,
    as_json: AsJson = False,
    stack_name: StackName = DEFAULT_STACK_NAME,
    local: UseLocal = False,
) -> None:
    """Show circuit states (closed, open until T, half-open, forced open, forced closed), last failures
    and the operator's reason for a forced state."""
    client = make_client(stack_name, local)
    views = [client.status(service)] if service else client.list_circuits()
    _show(views, as_json, single=service is not None)


@app.command("list")
@friendly_errors
def list_(
    as_json: AsJson = False,
    stack_name: StackName = DEFAULT_STACK_NAME,
    local: UseLocal = False,
) -> None:
    """List every circuit: each registered service, and any other circuit the table holds."""
    _show(make_client(stack_name, local).list_circuits(), as_json, single=False)


def _show(views: list[CircuitReport], as_json: bool, *, single: bool) -> None:
    if as_json:
        documents = [view_json(v) for v in views]
        typer.echo(json.dumps(documents[0] if single else documents, indent=2))
        return
    if not views:
        out.print("No circuits.")
        return
    rows = []
    for view in views:
        failed_at = short_time(view.last_failure_at)
        failure = f"{view.last_error} {failed_at}" if view.last_error and failed_at else view.last_error or ""
        reason = view.reason or ""
        rows.append([view.service, view.state.value, open_until(view), failure, reason, cause_message(view.last_cause)])
    headers = ["Service", "State", "Open until", "Last failure", "Reason", "Cause"]
    shown = [i for i, header in enumerate(headers) if header != "Reason" or any(row[i] for row in rows)]
    table = Table()
    for index in shown:
        # Cells wrap between words only: each column is at least as wide as its longest word
        # (an error name such as PaymentFailed stays whole), and the cause takes what is left.
        cells = [headers[index], *(row[index] for row in rows)]
        longest_word = max((len(word) for cell in cells for word in cell.split()), default=1)
        if headers[index] == "Cause":
            table.add_column("Cause", overflow="ellipsis", ratio=1, min_width=min(longest_word, 20))
        else:
            table.add_column(headers[index], overflow="ellipsis", min_width=longest_word)
    for view, row in zip(views, rows, strict=True):
        row[1] = f"[{STATE_STYLES.get(view.state, 'default')}]{escape(row[1])}[/]"
        row[5] = shorten(row[5], 100)
        table.add_row(*(row[i] if i == 1 else Text(row[i]) for i in shown))
    out.print(table)
    for view in views:
        if view.problem:
            err.print(f"warning: the item of {view.service} is not valid: {view.problem}", markup=False)
        for shard in view.stale_shards:
            err.print(
                f"warning: read shard {shard.service} reads {describe(shard)}, but {view.service}'s circuit is "
                f"{describe(view)}: the calls that read that shard see it; "
                f"`breaker resync {view.service}` brings it in step.",
                markup=False,
            )


# --------------------------------------------------------------------------- operating circuits


@app.command("open")
@friendly_errors
def open_(
    service: Annotated[str, typer.Argument(help="The service whose circuit to open.")],
    for_: Annotated[str | None, typer.Option("--for", help="How long, with a unit: 30s, 10m, 2h, 1d, 1h30m.")] = None,
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
    except ValueError as exc:
        usage_error(f"--for {exc}.")
    try:
        moment = parse_time(until) if until is not None else None
    except ValueError as exc:
        usage_error(str(exc))
    change = make_client(stack_name, local).force_open(service, for_seconds=seconds, until=moment, reason=reason)
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


@app.command()
@friendly_errors
def resync(
    service: Annotated[str | None, typer.Argument(help="One service; every circuit when left out.")] = None,
    stack_name: StackName = DEFAULT_STACK_NAME,
    local: UseLocal = False,
) -> None:
    """Bring read shards (readShards) in step with their circuits, changing no circuit: after
    `breaker status` warns of a shard out of step, or after changing readShards."""
    repairs = make_client(stack_name, local).resync_shards(service)
    for repair in repairs:
        out.print(_repaired(repair) or f"{repair.service}: read shards already in step.", markup=False)
    if not repairs:
        out.print("No circuits.")


def _repaired(repair: ShardRepair) -> str:
    """What bringing a circuit's read shards in step did, in one line ('' when nothing)."""
    if not repair.changed:
        return ""
    parts = [f"{shard.service} (it read {describe(shard)})" for shard in repair.stale]
    parts += [f"{key} deleted (beyond readShards)" for key in repair.unread]
    return f"{repair.service}: read shards brought in step: {', '.join(parts)}."


def _confirm(change: CircuitChange, consequence: str) -> None:
    if not change.changed:
        out.print(f"{change.service}: already {describe(change.after)}; nothing changed.", markup=False)
    else:
        out.print(
            f"{change.service}: {describe(change.before)} -> {describe(change.after)}. {consequence}", markup=False
        )
    if change.shards is not None and change.shards.changed:
        out.print(_repaired(change.shards), markup=False)
