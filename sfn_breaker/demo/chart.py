"""The demo's chart: one run over time, three panels on the demo's clock (seconds since the first call).

1. Each call's latency (log scale) when it started, coloured by outcome: about 100 ms while
   healthy, seconds while the service is down and the circuit closed, a few ms when failing fast.
2. Outcomes per second, stacked, by the second in which each call ended.
3. Calls that reached the service per second, from the platform's records (execution histories
   or the function's log), split into calls made while it was down and the rest.

Every panel shades the outage (red) and the circuit's open periods (grey, hatched), as the
circuit watcher saw them. Drawn with matplotlib's ``Figure`` and the Agg canvas directly:
no pyplot, no global backend, nothing shown on screen.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sfn_breaker.demo.recording import Outcome
from sfn_breaker.demo.summary import open_periods

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from sfn_breaker.demo.recording import ServiceCallCount
    from sfn_breaker.demo.summary import DemoSummary

OUTCOME_COLOURS = {
    Outcome.OK: "#2ca02c",
    Outcome.FAILED: "#d62728",
    Outcome.FAST_FAILED: "#ff7f0e",
    Outcome.ERROR: "#9467bd",
}
OUTCOME_LABELS = {
    Outcome.OK: "succeeded",
    Outcome.FAILED: "failed (after every attempt)",
    Outcome.FAST_FAILED: "failed fast (circuit open)",
    Outcome.ERROR: "error",
}
OUTAGE_COLOUR = "#d62728"
REACHED_COLOUR = "#1f77b4"
OPEN_COLOUR = "#7f7f7f"


def write_chart(summary: DemoSummary, path: Path) -> Path:
    """Draw ``summary``'s recording into a PNG at ``path`` (its folder is created) and return the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    recording = summary.recording
    if recording is None:
        raise ValueError("the summary carries no recording to draw")
    scenario = recording.scenario
    end = max([scenario.total_seconds, *(call.ended for call in recording.calls)])
    seconds = max(1, math.ceil(end))
    periods = open_periods(recording.changes, end)

    figure = Figure(figsize=(12, 9), layout="constrained")
    FigureCanvasAgg(figure)
    latency_axes, outcome_axes, service_axes = figure.subplots(3, 1, sharex=True)
    title = (
        f"breaker demo: {summary.callers} callers, payment {scenario.outage} for {scenario.outage_seconds:g} s "
        f"- {summary.calls_made} calls, {summary.fast_fails} failed fast, "
        f"{_text(summary.service_calls_while_down)} reached payment while it was down"
    )
    figure.suptitle(title)

    # 1. latency of each call
    for outcome in Outcome:
        calls = [c for c in recording.calls if c.outcome is outcome]
        if calls:
            latency_axes.scatter(
                [c.started for c in calls],
                [max(c.latency, 0.001) for c in calls],
                s=10,
                color=OUTCOME_COLOURS[outcome],
            )
    latency_axes.set_yscale("log")
    latency_axes.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    latency_axes.yaxis.set_major_formatter(FuncFormatter(_duration_tick))
    latency_axes.yaxis.set_minor_formatter(NullFormatter())
    latency_axes.set_ylabel("call latency")
    if summary.settings is not None:
        latency_axes.axhline(summary.settings.timeout_seconds, color="black", linestyle=":", linewidth=1)
        latency_axes.annotate(
            f"service timeout ({summary.settings.timeout_seconds} s)",
            (1, summary.settings.timeout_seconds),
            xycoords=("axes fraction", "data"),
            xytext=(-4, 3),
            textcoords="offset points",
            ha="right",
            fontsize="small",
        )

    # 2. outcomes per second
    bottom = [0] * seconds
    for outcome in Outcome:
        per_second = [0] * seconds
        for call in recording.calls:
            if call.outcome is outcome:
                per_second[min(int(call.ended), seconds - 1)] += 1
        if any(per_second):
            outcome_axes.bar(
                range(seconds),
                per_second,
                width=1.0,
                align="edge",
                bottom=bottom,
                color=OUTCOME_COLOURS[outcome],
            )
            bottom = [b + n for b, n in zip(bottom, per_second, strict=True)]
    outcome_axes.set_ylabel("calls answered per second")

    # 3. calls that reached the service per second
    timed = _timed_count(recording.service_counts)
    if timed is not None:
        down = [0] * seconds
        up = [0] * seconds
        for hit in timed.calls:
            if hit.at is None:
                continue
            index = min(max(int(hit.at), 0), seconds - 1)
            (down if hit.while_down else up)[index] += 1
        service_axes.bar(range(seconds), up, width=1.0, align="edge", color=REACHED_COLOUR)
        service_axes.bar(range(seconds), down, width=1.0, align="edge", bottom=up, color=OUTAGE_COLOUR)
        service_axes.set_ylabel("calls reaching payment\nper second")
        service_axes.set_title(f"from the {timed.source}", fontsize="small", loc="right")
    else:
        service_axes.text(
            0.5,
            0.5,
            "no timed record of the calls that reached the service",
            ha="center",
            transform=service_axes.transAxes,
        )
    service_axes.set_xlabel("seconds since the first call")
    service_axes.set_xlim(0, seconds)

    for axes in (latency_axes, outcome_axes, service_axes):
        _shade(axes, scenario.outage_start, scenario.outage_end, periods)
        axes.grid(axis="y", alpha=0.3)
    if summary.recovery_to_close_seconds is not None:
        closed_at = scenario.outage_end + summary.recovery_to_close_seconds
        for axes in (latency_axes, outcome_axes, service_axes):
            axes.axvline(closed_at, color="#2ca02c", linestyle="--", linewidth=1)
        service_axes.annotate(
            f"closed {summary.recovery_to_close_seconds:.1f} s after recovery",
            (closed_at, 1),
            xycoords=("data", "axes fraction"),
            xytext=(3, -12),
            textcoords="offset points",
            fontsize="small",
            color="#2ca02c",
        )

    legend = [
        *(
            Patch(color=OUTCOME_COLOURS[o], label=f"call {OUTCOME_LABELS[o]}")
            for o in Outcome
            if o is not Outcome.ERROR
        ),
        Patch(color=REACHED_COLOUR, label="reached payment: a healthy call"),
        Patch(color=OUTAGE_COLOUR, label="reached payment: a call made while it was down"),
        Patch(facecolor=OUTAGE_COLOUR, alpha=0.12, label=f"payment down ({scenario.outage})"),
        Patch(facecolor=OPEN_COLOUR, alpha=0.25, hatch="//", label="circuit open"),
    ]
    if summary.errors:
        legend.insert(3, Patch(color=OUTCOME_COLOURS[Outcome.ERROR], label=f"call {OUTCOME_LABELS[Outcome.ERROR]}"))
    figure.legend(handles=legend, loc="outside lower center", ncols=4, fontsize="small")

    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


def _shade(axes: Axes, outage_start: float, outage_end: float, periods: list[tuple[float, float]]) -> None:
    axes.axvspan(outage_start, outage_end, color=OUTAGE_COLOUR, alpha=0.12, linewidth=0)
    for start, end in periods:
        axes.axvspan(start, end, facecolor=OPEN_COLOUR, alpha=0.25, hatch="//", edgecolor=OPEN_COLOUR, linewidth=0)


def _timed_count(counts: list[ServiceCallCount]) -> ServiceCallCount | None:
    for count in counts:
        if count.calls and all(call.at is not None for call in count.calls):
            return count
    return next((count for count in counts if not count.calls), None)


def _duration_tick(seconds: float, _position: Any) -> str:
    return f"{seconds * 1000:g} ms" if seconds < 1 else f"{seconds:g} s"


def _text(value: Any) -> str:
    return "?" if value is None else str(value)
