"""The numbers of one run: ``summarize`` turns a ``DemoRecording`` into a ``DemoSummary``.

Also the two readings of the circuit's transitions that the summary and the chart share:
``open_periods`` (when the circuit was open) and ``recovery_to_close`` (how long after the
service recovered the circuit closed for good).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sfn_breaker.core.model import CircuitState
from sfn_breaker.demo.recording import CallRecord, CircuitTransition, DemoRecording, Outcome
from sfn_breaker.demo.scenario import OutageKind, StoryPhase

if TYPE_CHECKING:
    from sfn_breaker.demo.recording import ServiceCallCount
    from sfn_breaker.demo.scenario import ServiceSettings


@dataclass(frozen=True, kw_only=True)
class DemoSummary:
    """The numbers of one run."""

    target: str
    settings: ServiceSettings | None
    callers: int
    outage: OutageKind
    healthy_seconds: float
    outage_seconds: float
    recovered_seconds: float
    calls_made: int
    successes: int
    failures: int
    timeouts: int
    fast_fails: int
    errors: int
    calls_while_down: int
    """Calls made (started) while the service was down."""
    fast_fails_while_down: int
    fast_fails_after_an_attempt: int | None
    """Fast fails that had reached the service first: a retry found the circuit open (``None``
    when the records cannot tell calls apart)."""
    service_calls: int | None
    """Calls that reached the service in the whole run, from the platform's records."""
    service_calls_while_down: int | None
    service_calls_source: str
    cross_checks: dict[str, tuple[int, int]]
    """Every record consulted: source -> (calls that reached the service, of which while down)."""
    times_opened: int
    open_seconds: float
    recovery_to_close_seconds: float | None
    """From the service's recovery to the circuit closing for good; ``None`` when it did not."""
    closed_at_end: bool
    duration_seconds: float
    chart_path: Path | None = None
    recording: DemoRecording | None = field(default=None, repr=False, compare=False)

    @property
    def records_agree(self) -> bool:
        return len(set(self.cross_checks.values())) <= 1

    @property
    def without_breaker_estimate(self) -> int | None:
        """For comparison only: every call made while down, each with every attempt."""
        return None if self.settings is None else self.calls_while_down * self.settings.max_attempts


def open_periods(changes: Sequence[CircuitTransition], end: float) -> list[tuple[float, float]]:
    """Intervals during which the watcher saw the circuit open (or forced open)."""
    periods: list[tuple[float, float]] = []
    opened: float | None = None
    for change in changes:
        is_open = change.state in (CircuitState.OPEN, CircuitState.FORCED_OPEN)
        if is_open and opened is None:
            opened = change.at
        elif not is_open and opened is not None:
            periods.append((opened, change.at))
            opened = None
    if opened is not None:
        periods.append((opened, end))
    return periods


def recovery_to_close(changes: Sequence[CircuitTransition], recovered_at: float) -> float | None:
    """Seconds from recovery until the circuit closed for good (its item deleted by a success),
    or ``None`` when it never opened or was not closed at the end."""
    if not changes or not any(c.state is CircuitState.OPEN for c in changes):
        return None
    if changes[-1].state is not CircuitState.CLOSED:
        return None
    return max(0.0, changes[-1].at - recovered_at)


def _fast_fails_after_an_attempt(calls: Sequence[CallRecord], record: ServiceCallCount | None) -> int | None:
    if record is None or any(hit.call is None for hit in record.calls):
        return None
    reached = {hit.call for hit in record.calls}
    return sum(1 for c in calls if c.outcome is Outcome.FAST_FAILED and (c.caller, c.number) in reached)


def summarize(
    recording: DemoRecording,
    *,
    target: str,
    settings: ServiceSettings | None,
    callers: int,
) -> DemoSummary:
    scenario = recording.scenario
    calls = recording.calls

    def count(outcome: Outcome, phase: StoryPhase | None = None) -> int:
        return sum(1 for c in calls if c.outcome is outcome and (phase is None or c.phase is phase))

    primary = recording.service_counts[0] if recording.service_counts else None
    periods = open_periods(recording.changes, recording.duration_seconds)
    return DemoSummary(
        target=target,
        settings=settings,
        callers=callers,
        outage=scenario.outage,
        healthy_seconds=scenario.healthy_seconds,
        outage_seconds=scenario.outage_seconds,
        recovered_seconds=scenario.recovered_seconds,
        calls_made=len(calls),
        successes=count(Outcome.OK),
        failures=count(Outcome.FAILED),
        timeouts=sum(1 for c in calls if c.outcome is Outcome.FAILED and c.timed_out),
        fast_fails=count(Outcome.FAST_FAILED),
        errors=count(Outcome.ERROR),
        calls_while_down=sum(1 for c in calls if c.phase is StoryPhase.OUTAGE),
        fast_fails_while_down=count(Outcome.FAST_FAILED, StoryPhase.OUTAGE),
        fast_fails_after_an_attempt=_fast_fails_after_an_attempt(calls, primary),
        service_calls=primary.total if primary else None,
        service_calls_while_down=primary.while_down if primary else None,
        service_calls_source=primary.source if primary else "not available",
        cross_checks={c.source: (c.total, c.while_down) for c in recording.service_counts},
        times_opened=sum(
            1
            for before, after in zip([None, *recording.changes], recording.changes, strict=False)
            if after.state is CircuitState.OPEN and (before is None or before.state is not CircuitState.OPEN)
        ),
        open_seconds=sum(end - start for start, end in periods),
        recovery_to_close_seconds=recovery_to_close(recording.changes, scenario.outage_end),
        closed_at_end=bool(recording.changes) and recording.changes[-1].state is CircuitState.CLOSED,
        duration_seconds=recording.duration_seconds,
        recording=recording,
    )
