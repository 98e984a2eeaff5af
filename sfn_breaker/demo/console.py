"""What a person sees in the terminal: the live timeline (``TimelinePrinter``: each phase of the
story, each call, each change of the circuit) and the summary table (``summary_table``), with rich.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sfn_breaker.contract import DEMO_SERVICE
from sfn_breaker.core.model import CircuitState
from sfn_breaker.demo.recording import CallRecord, CircuitTransition, DemoEvent, Outcome, StoryPhaseChange
from sfn_breaker.demo.scenario import StoryPhase

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from sfn_breaker.demo.summary import DemoSummary

_OUTCOME_STYLE = {
    Outcome.OK: "green",
    Outcome.FAILED: "red",
    Outcome.FAST_FAILED: "yellow",
    Outcome.ERROR: "magenta",
}
_CIRCUIT_STYLE = {
    CircuitState.CLOSED: "bold green",
    CircuitState.OPEN: "bold red",
    CircuitState.HALF_OPEN: "bold yellow",
    CircuitState.FORCED_OPEN: "bold red",
    CircuitState.FORCED_CLOSED: "bold cyan",
}


class TimelinePrinter:
    """Prints the live timeline: phases, each call, and each change of the circuit, every time on
    the demo's clock (seconds since the first call), the times the breaker gives as wall-clock
    times (an open circuit's end, a call's retry-after) included. ``started_at`` gives the wall-clock
    time of the demo clock's zero (``DemoRun.started_at``, known once the run starts)."""

    def __init__(
        self,
        console: Console,
        *,
        started_at: Callable[[], float],
        show_calls: bool = True,
        service: str = DEMO_SERVICE,
    ) -> None:
        self.console = console
        self._started_at = started_at
        self.show_calls = show_calls
        self.service = service
        self._first_change = True

    def __call__(self, event: DemoEvent) -> None:
        if isinstance(event, StoryPhaseChange):
            self.console.rule(f"[bold]{event.at:5.1f}s  {event.phase.value.upper()}[/]: {event.description}")
        elif isinstance(event, CircuitTransition):
            self._circuit(event)
        elif self.show_calls:
            self._call(event)

    def _call(self, call: CallRecord) -> None:
        style = _OUTCOME_STYLE[call.outcome]
        detail = ""
        if call.outcome is Outcome.FAILED:
            detail = f"{call.error}{' (timed out)' if call.timed_out else ''}"
        elif call.outcome is Outcome.FAST_FAILED:
            detail = (
                f"circuit open, retry after {self._elapsed(call.retry_after)}" if call.retry_after else "circuit open"
            )
            if call.from_memory:
                detail += " (from the client's memory: no execution)"
        elif call.outcome is Outcome.ERROR:
            detail = call.error or ""
        self.console.print(
            f"{call.ended:6.1f}s  caller {call.caller:<2} [{style}]{call.outcome.value:<11}[/] "
            f"{_latency(call.latency):>8}  [dim]{detail}[/]",
            highlight=False,
        )

    def _elapsed(self, moment: datetime | None) -> str:
        """A wall-clock time as seconds on the demo's clock, as every other time of the timeline."""
        if moment is None:
            return "?"
        return f"{moment.timestamp() - self._started_at():.1f}s"

    def _circuit(self, change: CircuitTransition) -> None:
        first, self._first_change = self._first_change, False
        style = _CIRCUIT_STYLE[change.state]
        if change.state is CircuitState.OPEN:
            until = datetime.fromtimestamp(change.open_until, tz=UTC) if change.open_until else None
            text = f"circuit OPEN until {self._elapsed(until)}: calls fail fast"
            if change.last_error:
                text += f" ({change.last_error})"
        elif change.state is CircuitState.HALF_OPEN:
            text = f"circuit HALF-OPEN: the next call probes {self.service}"
        elif change.state is CircuitState.CLOSED:
            text = "circuit CLOSED" + ("" if first else ": a call succeeded")
        else:
            text = f"circuit {change.state.value.upper()} by an operator"
        self.console.print(f"[{style}]{change.at:6.1f}s  >>> {text}[/]", highlight=False)


def _latency(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def summary_table(summary: DemoSummary) -> Table:
    """The run's numbers, for a person; every count of service calls names its record."""
    from rich.table import Table

    table = Table(
        title=f"breaker demo: {summary.callers} callers, outage: {summary.outage}",
        title_justify="left",
        show_header=False,
    )
    table.add_column("")
    table.add_column("", justify="right", style="bold")
    table.add_column("", style="dim")

    recording = summary.recording
    by_phase = ""
    if recording is not None:
        per_phase = {p: sum(1 for c in recording.calls if c.phase is p) for p in StoryPhase}
        by_phase = ", ".join(f"{per_phase[p]} {p.value}" for p in StoryPhase)
    table.add_row("calls made", str(summary.calls_made), by_phase)
    table.add_row("  succeeded", str(summary.successes), "")
    table.add_row("  failed", str(summary.failures), f"{summary.timeouts} timed out" if summary.timeouts else "")
    if summary.fast_fails_after_an_attempt:
        fast_note = f"{summary.fast_fails_after_an_attempt} of them on a retry, after a first attempt"
    elif summary.fast_fails_after_an_attempt == 0:
        fast_note = "payment was not called"
    else:
        fast_note = ""
    table.add_row("  failed fast (circuit open)", str(summary.fast_fails), fast_note)
    if summary.errors:
        table.add_row("  errors (no answer)", str(summary.errors), "")
    table.add_row(
        "calls made while payment was down",
        str(summary.calls_while_down),
        f"{summary.fast_fails_while_down} failed fast",
    )
    others = list(summary.cross_checks.items())[1:]
    source = summary.service_calls_source
    if others and summary.records_agree:
        source = " = ".join(summary.cross_checks)
    elif others:
        source += "; DISAGREES with " + ", ".join(f"{name}: {down}" for name, (_, down) in others)
    table.add_row("calls that reached payment while it was down", _optional(summary.service_calls_while_down), source)
    estimate = summary.without_breaker_estimate
    if estimate is not None and summary.settings is not None:
        table.add_row(
            "  without a breaker (estimate)",
            str(estimate),
            f"{summary.calls_while_down} calls x {summary.settings.max_attempts} attempts",
        )
    table.add_row("calls that reached payment in all", _optional(summary.service_calls), "")
    table.add_row("times the circuit opened", str(summary.times_opened), f"open {summary.open_seconds:.1f} s in all")
    if summary.recovery_to_close_seconds is not None:
        close, note = f"{summary.recovery_to_close_seconds:.1f} s", "until a call succeeded"
    else:
        close = "-"
        note = "the circuit never opened" if summary.times_opened == 0 else "not closed by the end"
    table.add_row("time from recovery to the circuit closing", close, note)
    table.add_row("run time", f"{summary.duration_seconds:.0f} s", summary.target)
    return table


def _optional(value: int | None) -> str:
    return "n/a" if value is None else str(value)
