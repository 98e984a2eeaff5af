"""The demo's chart: one run over time, three panels on the demo's clock (seconds since the first call).

1. Each call's latency (log scale) when it started, coloured by outcome: about 100 ms while
   healthy, seconds while the service is down and the circuit closed, a few ms when the breaker
   fails fast, and a separate marker on the bottom row ("<= 1 ms") for the fast fails answered
   from the client's memory of an open circuit, which start no execution at all.
2. Outcomes per second, stacked, by the second in which each call ended.
3. Calls that reached the service per second, from the platform's records (execution histories
   or the function's log), split into calls made while it was down and the rest.

Every panel shades the outage (yellow) and the circuit's open periods (grey, hatched), as the
circuit watcher saw them, on one clock: seconds since the first call. Only whole seconds are
drawn: the run's last, partial second would look like traffic falling (``whole_seconds``).
The colours are Okabe and Ito's colour-blind-safe palette, one colour for one meaning. Drawn
with matplotlib's ``Figure`` and the Agg canvas directly: no pyplot, no global backend, nothing
shown on screen.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sfn_breaker.demo.recording import Outcome
from sfn_breaker.demo.summary import open_periods

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from sfn_breaker.demo.recording import DemoRecording, ServiceCallCount
    from sfn_breaker.demo.summary import DemoSummary

# Okabe & Ito, "Color Universal Design": distinguishable with every common colour-vision deficiency.
OUTCOME_COLOURS = {
    Outcome.OK: "#009E73",  # bluish green
    Outcome.FAILED: "#D55E00",  # vermillion
    Outcome.FAST_FAILED: "#E69F00",  # orange
    Outcome.ERROR: "#000000",  # black
}
OUTCOME_LABELS = {
    Outcome.OK: "succeeded",
    Outcome.FAILED: "failed (after every attempt)",
    Outcome.FAST_FAILED: "failed fast (circuit open): the breaker answered",
    Outcome.ERROR: "error",
}
MEMORY_COLOUR = "#56B4E9"  # sky blue
MEMORY_LABEL = "call failed fast from the client's memory of an open circuit (no execution)"
REACHED_COLOUR = "#0072B2"  # blue
REACHED_WHILE_DOWN_COLOUR = "#CC79A7"  # reddish purple
OUTAGE_COLOUR = "#F0E442"  # yellow, as a shade
OPEN_COLOUR = "#7f7f7f"
CLOSED_COLOUR = "#009E73"
LATENCY_FLOOR = 0.001
"""Calls faster than this (answers from memory take microseconds) are drawn on this row, "<= 1 ms"."""


def whole_seconds(recording: DemoRecording) -> int:
    """How many whole seconds the chart draws: up to the end of the story or of the last call,
    whichever comes first, rounded down. Calls still ending after the callers stopped, and the
    last partial second, would read as traffic falling."""
    end = max((call.ended for call in recording.calls), default=recording.scenario.total_seconds)
    return max(1, math.floor(min(recording.scenario.total_seconds, end)))


def per_second(times: Iterable[float], seconds: int) -> list[int]:
    """How many of ``times`` fall in each of the first ``seconds`` whole seconds; later ones are left out."""
    counts = [0] * seconds
    for t in times:
        if 0 <= t < seconds:
            counts[int(t)] += 1
    return counts


def answered_series(recording: DemoRecording, seconds: int) -> list[tuple[str, str, list[int]]]:
    """The stacked bars of calls answered per second: (label, colour, counts), fast fails from the
    breaker and from the client's memory apart; series with no call are left out."""
    series = []
    for outcome in Outcome:
        calls = [c for c in recording.calls if c.outcome is outcome]
        if outcome is Outcome.FAST_FAILED:
            breaker = per_second((c.ended for c in calls if not c.from_memory), seconds)
            memory = per_second((c.ended for c in calls if c.from_memory), seconds)
            series.append((f"call {OUTCOME_LABELS[outcome]}", OUTCOME_COLOURS[outcome], breaker))
            series.append((MEMORY_LABEL, MEMORY_COLOUR, memory))
        else:
            series.append(
                (
                    f"call {OUTCOME_LABELS[outcome]}",
                    OUTCOME_COLOURS[outcome],
                    per_second((c.ended for c in calls), seconds),
                )
            )
    return [entry for entry in series if any(entry[2])]


def closed_label(summary: DemoSummary) -> str | None:
    if summary.recovery_to_close_seconds is None:
        return None
    return f"circuit closed, {summary.recovery_to_close_seconds:.1f} s after payment recovered"


def legend_entries(summary: DemoSummary) -> list[tuple[str, str]]:
    """(label, colour) of every legend entry the chart shows, in order."""
    recording = summary.recording
    assert recording is not None
    entries = [(label, colour) for label, colour, _ in answered_series(recording, whole_seconds(recording))]
    entries += [
        ("reached payment: a healthy call", REACHED_COLOUR),
        ("reached payment: a call made while it was down", REACHED_WHILE_DOWN_COLOUR),
        (f"payment down ({recording.scenario.outage})", OUTAGE_COLOUR),
        ("circuit open", OPEN_COLOUR),
    ]
    closed = closed_label(summary)
    if closed is not None:
        entries.append((closed, CLOSED_COLOUR))
    return entries


def write_chart(summary: DemoSummary, path: Path) -> Path:
    """Draw ``summary``'s recording into a PNG at ``path`` (its folder is created) and return the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    recording = summary.recording
    if recording is None:
        raise ValueError("the summary carries no recording to draw")
    scenario = recording.scenario
    seconds = whole_seconds(recording)
    periods = open_periods(recording.changes, seconds)

    figure = Figure(figsize=(12, 9), layout="constrained")
    FigureCanvasAgg(figure)
    latency_axes, outcome_axes, service_axes = figure.subplots(3, 1, sharex=True)
    title = (
        f"breaker demo: {summary.callers} callers, payment {scenario.outage} for {scenario.outage_seconds:g} s "
        f"- {summary.calls_made} calls, {summary.fast_fails} failed fast, "
        f"{_text(summary.service_calls_while_down)} reached payment while it was down"
    )
    figure.suptitle(title)

    # 1. latency of each call; answers from memory on the bottom row, with their own marker
    for outcome in Outcome:
        calls = [c for c in recording.calls if c.outcome is outcome and not c.from_memory]
        if calls:
            latency_axes.scatter(
                [c.started for c in calls],
                [max(c.latency, LATENCY_FLOOR) for c in calls],
                s=10,
                color=OUTCOME_COLOURS[outcome],
            )
    remembered = [c for c in recording.calls if c.from_memory]
    if remembered:
        latency_axes.scatter(
            [c.started for c in remembered],
            [max(c.latency, LATENCY_FLOOR) for c in remembered],
            s=22,
            marker="v",
            color=MEMORY_COLOUR,
            edgecolors="black",
            linewidths=0.4,
        )
    latency_axes.set_yscale("log")
    latency_axes.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    latency_axes.yaxis.set_major_formatter(FuncFormatter(_duration_tick))
    latency_axes.yaxis.set_minor_formatter(NullFormatter())
    latency_axes.set_ylim(bottom=LATENCY_FLOOR * 0.8)
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
    for _label, colour, counts in answered_series(recording, seconds):
        outcome_axes.bar(range(seconds), counts, width=1.0, align="edge", bottom=bottom, color=colour)
        bottom = [b + n for b, n in zip(bottom, counts, strict=True)]
    outcome_axes.set_ylabel("calls answered per second")

    # 3. calls that reached the service per second
    timed = _timed_count(recording.service_counts)
    if timed is not None:
        up = per_second((hit.at for hit in timed.calls if hit.at is not None and not hit.while_down), seconds)
        down = per_second((hit.at for hit in timed.calls if hit.at is not None and hit.while_down), seconds)
        service_axes.bar(range(seconds), up, width=1.0, align="edge", color=REACHED_COLOUR)
        service_axes.bar(range(seconds), down, width=1.0, align="edge", bottom=up, color=REACHED_WHILE_DOWN_COLOUR)
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
            axes.axvline(closed_at, color=CLOSED_COLOUR, linestyle="--", linewidth=1.5)

    # The legend names every mark; the closing line is named there, not on top of the bars.
    handles: list[Any] = []
    for label, colour in legend_entries(summary):
        if label == MEMORY_LABEL:
            handles.append(Line2D([], [], marker="v", linestyle="", color=colour, markeredgecolor="black", label=label))
        elif label == "circuit open":
            handles.append(Patch(facecolor=OPEN_COLOUR, alpha=0.25, hatch="//", label=label))
        elif colour == OUTAGE_COLOUR:
            handles.append(Patch(facecolor=OUTAGE_COLOUR, alpha=0.35, label=label))
        elif label == closed_label(summary):
            handles.append(Line2D([], [], color=colour, linestyle="--", label=label))
        else:
            handles.append(Patch(color=colour, label=label))
    figure.legend(handles=handles, loc="outside lower center", ncols=3, fontsize="small")

    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


def _shade(axes: Axes, outage_start: float, outage_end: float, periods: list[tuple[float, float]]) -> None:
    """The outage and the open periods, behind the marks (zorder 0): a shade over a bar would change its colour."""
    axes.axvspan(outage_start, outage_end, color=OUTAGE_COLOUR, alpha=0.35, linewidth=0, zorder=0)
    for start, end in periods:
        axes.axvspan(
            start, end, facecolor=OPEN_COLOUR, alpha=0.25, hatch="//", edgecolor=OPEN_COLOUR, linewidth=0, zorder=0
        )
    axes.set_axisbelow(True)


def _timed_count(counts: list[ServiceCallCount]) -> ServiceCallCount | None:
    for count in counts:
        if count.calls and all(call.at is not None for call in count.calls):
            return count
    return next((count for count in counts if not count.calls), None)


def _duration_tick(seconds: float, _position: Any) -> str:
    if seconds <= LATENCY_FLOOR:
        return "<= 1 ms"
    return f"{seconds * 1000:g} ms" if seconds < 1 else f"{seconds:g} s"


def _text(value: Any) -> str:
    return "?" if value is None else str(value)
