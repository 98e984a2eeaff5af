"""The benchmark's outputs: a Markdown report, the numbers as JSON, and the chart."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.outage.base import Outcome
from bench.outage.counting import Operations
from bench.outage.operations import CALLS, Counted
from bench.outage.pricing import PRICES_READ_ON, cost_per_million
from bench.outage.run import Run
from bench.outage.settings import Settings

MODE_TITLES = {"fail": "the service fails at once", "hang": "the service hangs past the timeout"}
STANDARD = {"reference design"}
OURS = "this project"
POSSESSIVE = {"reference design": "the reference design's", "Powertools": "Powertools'"}


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if math.isinf(value):
        return "not by the end"
    return f"{value:.1f} s"


def costs(
    counted: Mapping[str, Mapping[str, Counted]], service_function: str, settings: Settings
) -> dict[str, dict[str, float]]:
    """Dollars per million calls, by strategy and counted call."""
    return {
        strategy: {
            call: cost_per_million(
                c.operations,
                service_function=service_function,
                standard=strategy in STANDARD,
                service_ms=settings.service_seconds * 1000,
            )
            for call, c in calls.items()
        }
        for strategy, calls in counted.items()
    }


def _operations_cell(ops: Operations, service_function: str) -> list[str]:
    own = ops.breaker_lambda_invocations(service_function)
    service = ops.lambda_invocations.get(service_function, 0)
    dynamo = ", ".join(f"{n} {action}" for action, n in sorted(ops.dynamodb.items())) or "0"
    return [
        str(ops.executions),
        str(ops.state_transitions) if ops.executions else "—",
        f"{own} + {service}",
        f"{dynamo} ({ops.read_units:g} RRU, {ops.write_units:g} WRU)",
    ]


def markdown(
    settings: Settings,
    runs: Sequence[Run],
    counted: Mapping[str, Mapping[str, Counted]],
    service_function: str,
) -> str:
    lines: list[str] = []
    scale = f"{settings.scale:.3g}" if settings.scale != 1 / 3 else "1/3"
    lines.append(
        f"{settings.callers} callers, each calling again {settings.pause_seconds * 1000:.0f} ms after its answer; "
        f"the service answers in {settings.service_seconds * 1000:.0f} ms. Time scale {scale}: every strategy uses "
        f"a {settings.timeout} s timeout and a {settings.open_period} s open period; healthy {settings.healthy:g} s, "
        f"down {settings.outage:g} s, recovered {settings.recovery:g} s; a hanging call blocks "
        f"{settings.hang_seconds:g} s."
    )
    for mode in settings.modes:
        lines += ["", f"**When {MODE_TITLES[mode]}**", ""]
        lines.append(
            "| strategy | calls that reached the service while it was down | fast fails | successes | failures "
            "| recovery to first success | recovery to circuit closed | executions (calls without one) "
            "| closed-call latency, median | calls per caller per s, healthy | emulator's invocation records |"
        )
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for r in (r for r in runs if r.mode == mode):
            latency = r.healthy_latency
            executions = "—" if r.executions is None else f"{r.executions} ({r.calls_without_execution})"
            agree = "agree" if r.emulator_invocations == len(r.arrivals) else f"{r.emulator_invocations} (differ)"
            lines.append(
                f"| {r.strategy} | **{r.reached_while_down}** | {r.count(Outcome.FAST_FAIL)} | {r.count(Outcome.OK)} "
                f"| {r.count(Outcome.FAILED)} | {_seconds(r.first_success_after_recovery)} "
                f"| {_seconds(r.closed_after_recovery)} | {executions} "
                f"| {'—' if latency is None else f'{latency * 1000:.0f} ms'} | {r.healthy_rate:.2f} | {agree} |"
            )
    prices = costs(counted, service_function, settings)
    lines += ["", "**AWS operations of one call, and the cost of a million such calls**", ""]
    lines.append(
        "| strategy | call | executions | state transitions | Lambda invocations (breaker's own + service) "
        "| DynamoDB requests | cost per million calls | latency, alone on the emulator |"
    )
    lines.append("|---|---|---:|---:|---:|---|---:|---:|")
    for strategy, calls in counted.items():
        for call in CALLS:
            if call not in calls:
                continue
            c = calls[call]
            cells = _operations_cell(c.operations, service_function)
            lines.append(
                f"| {strategy} | {call} ({c.outcome}) | "
                + " | ".join(cells)
                + f" | ${prices[strategy][call]:.2f} | {c.seconds * 1000:.0f} ms |"
            )
    lines += ["", *ratios(runs, prices, settings)]
    lines += [
        "",
        f"Costs: us-east-1 list prices read {PRICES_READ_ON} (see `bench/outage/pricing.py`), the service's own "
        "invocation left out. Counts come from the emulator: moto's DynamoDB front end, its Lambda dispatch and "
        "the execution histories.",
    ]
    return "\n".join(lines) + "\n"


def ratios(runs: Sequence[Run], prices: Mapping[str, Mapping[str, float]], settings: Settings) -> list[str]:
    lines: list[str] = []
    for mode in settings.modes:
        reached = {r.strategy: r.reached_while_down for r in runs if r.mode == mode}
        if OURS not in reached:
            continue
        parts = [
            f"{reached[OURS] / reached[other]:.2f}x {POSSESSIVE[other]}" if reached[other] else f"{other}: 0"
            for other in ("reference design", "Powertools")
            if other in reached
        ]
        if parts:
            lines.append(
                f"- Calls that reached the dead service ({mode}): this project {reached[OURS]}, "
                + ", ".join(parts)
                + "."
            )
    if OURS in prices:
        for call in ("closed, first", "closed, next", "open, first", "open, next"):
            ours = prices[OURS].get(call)
            if ours is None:
                continue
            parts = [
                f"{ours / prices[other][call]:.2g}x {POSSESSIVE[other]}" if prices[other].get(call) else f"{other}: $0"
                for other in ("reference design", "Powertools")
                if other in prices and call in prices[other]
            ]
            if parts:
                lines.append(f"- Cost per million calls ({call}): this project ${ours:.2f}, " + ", ".join(parts) + ".")
    return lines


def as_json(settings: Settings, runs: Sequence[Run], counted: Mapping[str, Mapping[str, Counted]]) -> dict[str, Any]:
    return {
        "settings": {
            "callers": settings.callers,
            "scale": settings.scale,
            "timeout_seconds": settings.timeout,
            "open_seconds": settings.open_period,
            "phases_seconds": [settings.healthy, settings.outage, settings.recovery],
            "powertools_cache_seconds": settings.powertools_cache,
        },
        "runs": [
            {
                "strategy": r.strategy,
                "mode": r.mode,
                "reached_while_down": r.reached_while_down,
                "fast_fails": r.count(Outcome.FAST_FAIL),
                "successes": r.count(Outcome.OK),
                "failures": r.count(Outcome.FAILED),
                "calls": len(r.calls),
                "executions": r.executions,
                "first_success_after_recovery_s": r.first_success_after_recovery,
                "closed_after_recovery_s": r.closed_after_recovery,
                "healthy_latency_s": r.healthy_latency,
                "healthy_calls_per_caller_per_s": r.healthy_rate,
                "emulator_invocations": r.emulator_invocations,
                "service_arrivals": len(r.arrivals),
                "arrivals_since_outage_s": [round(t - r.down_at, 3) for t in r.arrivals],
            }
            for r in runs
        ],
        "operations": {
            strategy: {
                call: {
                    "outcome": str(c.outcome),
                    "executions": c.operations.executions,
                    "state_transitions": c.operations.state_transitions,
                    "billable_transitions": c.operations.billable_transitions,
                    "lambda_invocations": dict(c.operations.lambda_invocations),
                    "dynamodb": dict(c.operations.dynamodb),
                    "read_units": c.operations.read_units,
                    "write_units": c.operations.write_units,
                }
                for call, c in calls.items()
            }
            for strategy, calls in counted.items()
        },
    }


def chart(settings: Settings, runs: Sequence[Run], path: Path, bucket: float = 0.5) -> None:
    """Calls reaching the service over time, one line per strategy and one row per mode: per
    second on the left, and on the right the running count of calls that reached it while down."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = list(settings.modes)
    fig, axes = plt.subplots(len(modes), 2, figsize=(14, 3.8 * len(modes)), squeeze=False)
    for row, mode in enumerate(modes):
        rate, total = axes[row]
        for r in (r for r in runs if r.mode == mode):
            first, last = r.start - r.down_at, r.end - r.down_at
            edges = [first + i * bucket for i in range(int((last - first) / bucket) + 2)]
            counts = [0] * (len(edges) - 1)
            for t in r.arrivals:
                i = int((t - r.down_at - first) // bucket)
                if 0 <= i < len(counts):
                    counts[i] += 1
            (line,) = rate.step(edges[:-1], [c / bucket for c in counts], where="post", label=r.strategy)
            down = sorted(t - r.down_at for t in r.arrivals if r.down_at <= t < r.up_at)
            xs = [0.0, *[x for t in down for x in (t, t)], settings.outage]
            ys = [0, *[y for n in range(len(down)) for y in (n, n + 1)], len(down)]
            total.plot(xs, ys, color=line.get_color(), label=f"{r.strategy}: {len(down)}")
        for axis in (rate, total):
            axis.axvspan(0, settings.outage, color="red", alpha=0.07)
            axis.grid(alpha=0.3)
            axis.set_xlabel("seconds since the service went down (shaded: down)")
        rate.set_title(f"When {MODE_TITLES[mode]}: calls reaching the service")
        rate.set_ylabel("calls per second")
        rate.legend(loc="upper right", fontsize=8)
        total.set_title("calls that reached the dead service, so far")
        total.set_ylabel("calls")
        total.set_xlim(-0.5, settings.outage + 0.5)
        total.legend(loc="upper left", fontsize=8)
    fig.suptitle(
        f"{settings.callers} callers; every strategy: {settings.timeout} s timeout, {settings.open_period} s open "
        f"period (time scale {settings.scale:.3g})"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(
    out_dir: Path,
    settings: Settings,
    runs: Sequence[Run],
    counted: Mapping[str, Mapping[str, Counted]],
    service_function: str,
) -> str:
    out_dir.mkdir(parents=True, exist_ok=True)
    text = markdown(settings, runs, counted, service_function)
    (out_dir / "outage.md").write_text(text)
    (out_dir / "outage.json").write_text(json.dumps(as_json(settings, runs, counted), indent=2))
    chart(settings, runs, out_dir / "outage.png")
    return text
