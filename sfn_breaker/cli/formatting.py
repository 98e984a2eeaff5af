"""Circuits, times and durations as text: for the table and ``--json``, and read back from the
``breaker open`` options. Plain functions, no Typer or Rich."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import Any

from sfn_breaker.core.model import CircuitState, CircuitView

STATE_STYLES = {
    CircuitState.CLOSED: "green",
    CircuitState.OPEN: "bold red",
    CircuitState.HALF_OPEN: "bold yellow",
    CircuitState.FORCED_OPEN: "bold magenta",
    CircuitState.FORCED_CLOSED: "yellow",
}
"""The Rich style of each state in the table."""


def view_json(view: CircuitView) -> dict[str, Any]:
    """A circuit for ``--json``: field names as in the README, times as ISO-8601 UTC; ``reason`` is
    the operator's note and ``staleShards`` the read shards that disagree with the circuit (on a
    ``CircuitReport``, what the client returns)."""
    return {
        "service": view.service,
        "state": view.state.value,
        "openUntil": iso_utc(view.open_until),
        "lastError": view.last_error,
        "lastCause": view.last_cause,
        "lastFailureAt": view.last_failure_at,
        "reason": getattr(view, "reason", None),
        "problem": view.problem,
        "staleShards": [
            {"shard": shard.service, "state": shard.state.value, "openUntil": iso_utc(shard.open_until)}
            for shard in getattr(view, "stale_shards", ())
        ],
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


def open_until(view: CircuitView) -> str:
    """The table's "Open until": a time and how far off it is, ``further notice``, or nothing."""
    if view.open_until is not None:
        moment = datetime.fromtimestamp(view.open_until, tz=UTC).isoformat()
        if view.state is CircuitState.HALF_OPEN:
            return f"{short_time(moment)} (over)"  # half-open: the next call probes the service
        return f"{short_time(moment)} ({relative(view.open_until)})"
    if view.state is CircuitState.FORCED_OPEN:
        return "further notice"
    return ""


def describe(view: CircuitView) -> str:
    """A circuit's state in words: ``open until T``, ``forced open until further notice``, ..."""
    if view.state in (CircuitState.OPEN, CircuitState.FORCED_OPEN):
        return f"{view.state.value} until {open_until(view)}"
    return view.state.value


def iso_utc(epoch: int | None) -> str | None:
    """An epoch as ISO-8601 UTC to the second, ``2026-11-24T08:28:10Z``."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def short_time(iso: str | None) -> str | None:
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


def relative(epoch: int) -> str:
    seconds = max(0, round(epoch - time.time()))
    if seconds >= 120:  # to the minute: the seconds are noise at that distance
        seconds = round(seconds / 60) * 60
    return f"in {format_duration(seconds)}"


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(text: str) -> int:
    """``30s``, ``10m``, ``2h``, ``1d`` or ``1h30m``, as whole seconds. A bare number is refused:
    ``--for 10`` could mean seconds or minutes, and a circuit held open for the wrong one is an outage."""
    text = text.strip().lower()
    if text.isdigit():
        raise ValueError(f"{text} has no unit: write {text}s, {text}m, {text}h or {text}d (or 1h30m)")
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"{text!r} is not a duration like 30s, 10m, 2h or 1h30m")
    days, hours, minutes, secs = (int(group or 0) for group in match.groups())
    seconds = ((days * 24 + hours) * 60 + minutes) * 60 + secs
    if seconds <= 0:
        raise ValueError(f"{text!r} is not more than zero")
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
